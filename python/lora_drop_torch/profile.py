"""The `profile` command: LoRA-drop's output criterion and the weight and gradient criteria, on PEFT's LoRA layers.

- output: a forward hook on each LoRA layer's lora_B gives B·A·dropout(x) (dropout is off in eval mode); times
  PEFT's scaling s it is the LoRA's contribution to the module output, whose squared norm per token is recorded.
- weight: ‖s·B·A‖_F², from the r×r Gram matrices in float64.
- gradient: Σ over batches of ‖∂L/∂A‖² + ‖∂L/∂B‖², L the batch's mean loss. PEFT loads every module with its own
  parameters, so even where an adapter shares one pair each layer is measured on its own.
The result holds one raw sum per LoRA module (in the request's order); per-token norms go to a safetensors file.
"""
import os
import time

import torch

from . import protocol
from .data import Batch, count_targets, read_examples
from .errors import EngineError
from .modeling import attach_lora, load_model, lora_config, lora_modules, loss_sum
from .outputs import save_tensors

CRITERIA = ("output", "weight", "gradient")


def run(req, device, dtype):
    """Runs every requested criterion over one loaded model; returns the result line."""
    criteria = req.get("criteria", list)
    for c in criteria:
        if c not in CRITERIA:
            raise EngineError("INVALID_ARGUMENT", f"criterion {c!r} is not one of {', '.join(CRITERIA)}", req.path,
                              "criteria")
    task = req.choice("task", ("causal-lm", "seq-cls"))
    examples = read_examples(req.get("examples", str))
    batches = [[examples[i] for i in group] for group in req.get("batches", list)]
    adapter_dir = req.get("adapter", str)
    model = load_model(req.get("model", str), task, device, dtype)
    config = lora_config(req.get("loraConfig", dict), True, adapter_dir)
    peft_model = attach_lora(model, config, adapter_dir, False, device)
    pairs = lora_modules(peft_model, req.get("loras", list), adapter_dir)
    pad = req.get("padTokenId", int, 0)
    out_dir = req.get("outputDir", str)
    started = time.time()
    results = {}
    for c in criteria:
        if c == "weight":
            results[c] = {"raw": weight_norms(pairs)}
        elif c == "output":
            raw, norms = output_norms(peft_model, pairs, batches, examples, task, pad, device)
            norms_file = os.path.join(out_dir, "norms.safetensors")
            save_tensors(norms_file, {f"norms.{i}": t for i, t in enumerate(norms)})
            results[c] = {"raw": raw, "normsFile": norms_file}
        else:
            results[c] = {"raw": gradient_norms(peft_model, pairs, batches, task, pad, device)}
    for c, r in results.items():
        bad = next((i for i, v in enumerate(r["raw"]) if v != v or v in (float("inf"), float("-inf"))), None)
        if bad is not None:
            e = pairs[bad][0]
            raise EngineError("NUMERICAL", f"the {c} criterion of layer {e['layer']} {e['module']} is not finite: "
                              "NaN or Inf in the adapter, the model, or a float overflow", adapter_dir, e["name"])
    return {"type": "result", "command": "profile", "device": str(device.type), "dtype": str(dtype).split(".")[-1],
            "criteria": results, "seconds": time.time() - started}


def weight_norms(pairs):
    """‖s·B·A‖_F² = s²·Σ (A·Aᵀ) ⊙ (Bᵀ·B) per module, never forming the out×in product."""
    out = []
    with torch.no_grad():
        for _, m in pairs:
            a = m.lora_A["default"].weight.double()
            b = m.lora_B["default"].weight.double()
            s = float(m.scaling["default"])
            out.append(float(s * s * ((a @ a.T) * (b.T @ b)).sum()))
    return out


def output_norms(peft_model, pairs, batches, examples, task, pad, device):
    """Per-token ‖s·B·A·x‖² of every LoRA module over the batches (padding excluded), and their sums. The sums stay
    on the device and each batch's norms come to the host in one copy: a GPU is synchronised once per batch, not
    once per module."""
    offsets, total = {}, 0
    for e in examples:
        offsets[id(e)] = total
        total += len(e.ids)
    norms = torch.zeros((len(pairs), total), dtype=torch.float32)
    raw = torch.zeros(len(pairs), dtype=torch.float64, device=device)
    captured = {}

    def hook(i, scale):
        def record(_module, _inputs, output):
            captured[i] = (output.float() * scale).pow(2).sum(-1)
        return record

    handles = [m.lora_B["default"].register_forward_hook(hook(i, float(m.scaling["default"])))
               for i, (_, m) in enumerate(pairs)]
    # The backbone (LlamaModel, GPT2Model, RobertaModel…) without its LM or classification head: the LoRA outputs
    # are all inside it, and the head's logits are not needed.
    backbone = peft_model.get_base_model().base_model
    done = 0
    try:
        with torch.no_grad():
            for group in batches:
                batch = Batch(group, pad, device)
                captured.clear()
                backbone(**batch.model_inputs(task))
                stacked = torch.stack([captured[i] for i in range(len(pairs))])
                raw += (stacked * batch.attention_mask.unsqueeze(0)).double().sum(dim=(1, 2))
                rows = stacked.cpu()
                for b, e in enumerate(group):
                    n = len(e.ids)
                    norms[:, offsets[id(e)]:offsets[id(e)] + n] = rows[:, b, :n]
                done += batch.tokens
                protocol.progress(done, total, f"{done}/{total} tokens (output criterion)")
    finally:
        for h in handles:
            h.remove()
    # Separate tensors: safetensors refuses to save views that share one storage.
    return raw.tolist(), [row.clone() for row in norms]


def gradient_norms(peft_model, pairs, batches, task, pad, device):
    """Σ over batches of ‖∂L/∂A‖² + ‖∂L/∂B‖² per module, L the mean loss of the batch."""
    params = [p for _, m in pairs for p in (m.lora_A["default"].weight, m.lora_B["default"].weight)]
    for p in params:
        p.requires_grad_(True)
    raw = [0.0] * len(pairs)
    total = sum(len(e.ids) for g in batches for e in g)
    done = 0
    for group in batches:
        n = count_targets(group, task)
        done += sum(len(e.ids) for e in group)
        if n > 0:
            for p in params:
                p.grad = None
            (loss_sum(peft_model, Batch(group, pad, device), task) / n).backward()
            with torch.no_grad():
                for i, (_, m) in enumerate(pairs):
                    ga, gb = m.lora_A["default"].weight.grad, m.lora_B["default"].weight.grad
                    raw[i] += float(ga.double().pow(2).sum() + gb.double().pow(2).sum())
        protocol.progress(done, total, f"{done}/{total} tokens (gradient criterion)")
    return raw
