"""The torch engine's throughput on a GPU against a plain PEFT loop on the same GPU, the same model and the same
batches: the profile (output criterion: one forward per batch with the LoRA norm hooks) against a plain no-grad
PEFT forward, and training (forward, backward, clipping, AdamW) against a plain PEFT training loop. The ratio is
the engine's own overhead: its goal is >= 0.95.

The engine runs as the extension and the CLI run it, `python -m lora_drop_torch REQUEST.json` from python/, with
requests written here the way extension/core/torch/protocol.ts describes them; it is timed between its own reports
(one progress line per profiled batch, one step line per optimiser step), so model loading and the first (warm-up)
batch or step are left out of both sides alike.

Models are random (a fixed seed) at a real model's shape, built by transformers' own classes and written once with
save_pretrained into --cache, with a PEFT LoRA (r 8 on q_proj and v_proj).

Usage (a CUDA machine with torch, transformers, peft, safetensors):
    python3 scripts/bench/gpu_bench.py --shape tinyllama --dtype bfloat16 --json tinyllama.json
    python3 scripts/bench/gpu_bench.py --shape 7b --dtype bfloat16 --batch 4 --seq 512 --json 7b.json
    python3 scripts/bench/gpu_bench.py --dry-run        # a tiny model on the CPU: checks the script end to end
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGE = os.path.join(ROOT, "python")

#: Llama shapes: TinyLlama-1.1B, Llama-2-7B, and a tiny one for --dry-run.
SHAPES = {
    "tinyllama": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=32000),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=256),
}
TARGETS = ["q_proj", "v_proj"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main():
    a = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    model_dir, adapter_dir = ensure_model(a)
    batches = token_batches(a)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lora-drop-gpu-bench-") as work:
        examples = os.path.join(work, "examples.jsonl")
        with open(examples, "w") as f:
            for ids in (ids for batch in batches for ids in batch):
                f.write(json.dumps({"ids": ids}) + "\n")
        plan = [[list(range(i * a.batch, (i + 1) * a.batch))] for i in range(len(batches))]
        base = base_request(a, model_dir, adapter_dir, examples, work)
        tokens = a.batch * a.seq
        # The engine's runs first, each in its own process; then the plain loops in this one, so that a 7B model is
        # never on the GPU twice.
        engine_profile = run_engine({**base, "command": "profile", "adapter": adapter_dir, "criteria": ["output"],
                                     "batches": [p[0] for p in plan]}, work, "progress")
        engine_train = run_engine({**base, "command": "train", "initAdapter": adapter_dir, "trainHead": False,
                                   "plan": plan, "lr": 1e-4, "schedule": "constant", "warmupSteps": 0,
                                   "weightDecay": 0.0, "maxGradNorm": 1.0, "seed": 42, "checkpointEvery": 0,
                                   "checkpointDir": None, "resume": False, "fingerprint": {}}, work, "step")
        plain_profile = plain_forward(a, model_dir, adapter_dir, batches)
        plain_train = plain_training(a, model_dir, adapter_dir, batches)
    for name, engine, plain in (("profile", engine_profile, plain_profile), ("train", engine_train, plain_train)):
        e, p = tokens / min(engine["times"]), tokens / min(plain["times"])
        results[name] = {"engine_tokens_per_second": e, "plain_peft_tokens_per_second": p, "ratio": e / p,
                         "engine": engine, "plain_peft": plain}
        print(f"{name:8s} torch engine {e:10.0f} tok/s   plain PEFT {p:10.0f} tok/s   ratio {e / p:.3f} (goal >= 0.95)")
    report = {"date": started.isoformat(), "machine": machine(a), "shape": a.shape, "config": SHAPES[a.shape],
              "dtype": a.dtype, "device": a.device, "batch": a.batch, "seq": a.seq, "steps": a.steps,
              "lora": {"r": 8, "alpha": 16, "targets": TARGETS}, "results": results}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="tinyllama")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10, help="timed batches or steps, after one warm-up")
    p.add_argument("--cache", default=os.path.join(ROOT, ".cache", "gpu-bench"))
    p.add_argument("--json")
    p.add_argument("--dry-run", action="store_true", help="the tiny shape on the CPU in float32, 2 steps of 2 x 16")
    a = p.parse_args()
    if a.dry_run:
        a.shape, a.dtype, a.device, a.batch, a.seq, a.steps = "tiny", "float32", "cpu", 2, 16, 2
    return a


def ensure_model(a):
    """The cached model and adapter folders of the shape, written once (a marker file says they are complete)."""
    import transformers
    from peft import LoraConfig, get_peft_model

    folder = os.path.join(a.cache, f"{a.shape}-{a.dtype}")
    model_dir, adapter_dir, marker = (os.path.join(folder, n) for n in ("model", "adapter", "done"))
    if os.path.exists(marker):
        return model_dir, adapter_dir
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**SHAPES[a.shape], max_position_embeddings=max(2048, a.seq),
                                      tie_word_embeddings=False, pad_token_id=0)
    if a.device.startswith("cuda") and hasattr(torch.device, "__enter__"):
        # Built on the GPU (torch 2's device context): a 7B model initialises in seconds there.
        with torch.device(a.device):
            model = transformers.LlamaForCausalLM(config).to(DTYPES[a.dtype])
    else:
        model = transformers.LlamaForCausalLM(config).to(DTYPES[a.dtype])
    model.save_pretrained(model_dir, safe_serialization=True)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, lora_dropout=0.0,
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    del model, peft_model
    release(a)
    open(marker, "w").close()
    return model_dir, adapter_dir


def token_batches(a):
    """steps + 1 batches (the first is the warm-up) of `batch` random sequences of `seq` tokens."""
    g = torch.Generator().manual_seed(1)
    vocab = SHAPES[a.shape]["vocab_size"]
    return [torch.randint(3, vocab, (a.batch, a.seq), generator=g).tolist() for _ in range(a.steps + 1)]


def base_request(a, model_dir, adapter_dir, examples, work):
    """The fields every engine request has (extension/core/torch/protocol.ts)."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        lora_config = json.load(f)
    layers = SHAPES[a.shape]["num_hidden_layers"]
    loras = [{"name": f"model.layers.{i}.self_attn.{m}", "layer": i, "module": m, "param": f"L{i}.{m}"}
             for i in range(layers) for m in TARGETS]
    return {"version": 1, "model": model_dir, "architecture": "llama", "task": "causal-lm", "dtype": a.dtype,
            "device": a.device, "examples": examples, "data": examples, "padTokenId": 0, "loras": loras,
            "loraConfig": lora_config, "outputDir": work}


def run_engine(request, work, timed):
    """Runs the engine on one request; seconds between its `timed` lines (progress or step), and its peak memory."""
    path = os.path.join(work, f"{request['command']}.json")
    with open(path, "w") as f:
        json.dump(request, f)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "lora_drop_torch", path], stdout=subprocess.PIPE, env=env, text=True)
    stamps, result = [], None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg["type"] == timed:
            stamps.append(time.perf_counter())
        elif msg["type"] == "error":
            raise SystemExit(f"the torch engine failed: [{msg['code']}] {msg['message']}")
        elif msg["type"] == "result":
            result = msg
    if proc.wait() != 0 or result is None:
        raise SystemExit(f"the torch engine exited with {proc.returncode}")
    return {"times": [b - a for a, b in zip(stamps, stamps[1:])], "peak_rss_bytes": result.get("peakRssBytes"),
            "gpu_peak_bytes": result.get("gpuPeakBytes")}


def load_peft(a, model_dir, adapter_dir, trainable):
    import transformers
    from peft import PeftModel

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, **{dtype_key(): DTYPES[a.dtype]}).to(a.device)
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable).to(a.device)


def dtype_key():
    """transformers 4.56 renamed from_pretrained's torch_dtype to dtype."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def release(a):
    """Gives the memory of deleted models back (the allocator keeps it cached otherwise)."""
    import gc

    gc.collect()
    if a.device.startswith("cuda"):
        torch.cuda.empty_cache()


def synchronize(a):
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_forward(a, model_dir, adapter_dir, batches):
    """The floor of the profile: a plain PEFT forward of each batch, no gradients, no hooks."""
    model = load_peft(a, model_dir, adapter_dir, False).eval()
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad():
        for ids in batches:
            x = torch.tensor(ids, device=a.device)
            synchronize(a)
            t = time.perf_counter()
            model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
            synchronize(a)
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if a.device.startswith("cuda") else None
    del model
    release(a)
    return {"times": times[1:], "gpu_peak_bytes": peak}


def plain_training(a, model_dir, adapter_dir, batches):
    """A plain PEFT training loop: the mean next-token loss, backward, clipping at 1, AdamW on the LoRA weights."""
    model = load_peft(a, model_dir, adapter_dir, True)
    model.eval()  # as the engine: the base model's dropout off
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for ids in batches:
        x = torch.tensor(ids, device=a.device)
        synchronize(a)
        t = time.perf_counter()
        logits = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)
        synchronize(a)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if a.device.startswith("cuda") else None
    del model, opt
    release(a)
    return {"times": times[1:], "gpu_peak_bytes": peak}


def machine(a):
    import peft
    import transformers

    out = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "peft": peft.__version__, "cpus": os.cpu_count()}
    if a.device.startswith("cuda") and torch.cuda.is_available():
        out.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    return out


if __name__ == "__main__":
    sys.exit(main())
