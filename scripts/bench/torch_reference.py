#!/usr/bin/env python3
"""PyTorch reference for `npm run bench` (CPU; `--device cuda` for the GPU comparison): the same Llama + LoRA forward pass on the same safetensors weights.

Weights are memory-mapped copy-on-write (like onnxruntime's external data), so neither side pays for a copy.
The pass mirrors extension/core/models/llama.ts: RMSNorm, RoPE, grouped-query attention by broadcasting K/V (no
repeat), SwiGLU, LoRA s*B(A x) added to each targeted projection, and the per-token ||s*B*A*x||^2 taps.
`profile` stops after the last LoRA layer, computes of that layer only what leads to its last tap, and skips the
LM head (as the engine's pruned profile graph does); `forward` runs every layer whole and adds the logits.

Prints one JSON object on stdout: best/all run times, peak RSS (ru_maxrss), the BLAS libraries actually loaded,
and writes the taps and the last token's logits to --out for the accuracy check against onnxruntime.
"""
import argparse
import json
import math
import mmap
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None}


def load_safetensors(path):
    """Returns {name: tensor} memory-mapped copy-on-write from one safetensors file (F32/F16)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    start = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = DTYPES.get(e["dtype"])
        if dt is None:
            sys.exit(f"{path}: tensor {name} has dtype {e['dtype']}; the reference reads F32/F16 only")
        b, end = e["data_offsets"]
        arr = np.frombuffer(mm, dtype=dt, count=(end - b) // np.dtype(dt).itemsize, offset=start + b)
        out[name] = torch.from_numpy(arr.reshape(e["shape"])).float()
    return out


def load_model(model_dir):
    files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    weights = {}
    for f in files:
        weights.update(load_safetensors(os.path.join(model_dir, f)))
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    return cfg, weights


def load_adapter(adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    raw = load_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    scale = acfg["lora_alpha"] / (math.sqrt(acfg["r"]) if acfg.get("use_rslora") else acfg["r"])
    loras = {}
    for key, t in raw.items():
        # base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}.weight
        parts = key.split(".")
        layer, module, which = int(parts[4]), parts[6], parts[7][-1]
        loras.setdefault((layer, module), {"scale": scale})[which] = t.contiguous()
    return loras


ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TapsDone(Exception):
    """Raised after the profile pass's last tap: nothing after it is needed."""


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_and_mask(cfg, S):
    """The rotary embedding (a function of [..., S, D] tensors) and the additive causal mask for S tokens."""
    D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, S, D]

    def rope(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    return rope, torch.full((S, S), float("-inf")).triu(1)


def module_path(layer, module):
    """The HF weight prefix of a decoder layer's linear module."""
    return f"model.layers.{layer}.{'mlp' if module in ('gate_proj', 'up_proj', 'down_proj') else 'self_attn'}.{module}"


def forward(cfg, w, loras, ids, mode):
    S = ids.shape[0]
    last_lora = max(layer for layer, _ in loras) + 1
    num_layers = last_lora if mode == "profile" else cfg["num_hidden_layers"]

    rope, mask = rope_and_mask(cfg, S)
    taps = []
    # In the profile pass's last layer, base projections are needed only where a later targeted module reads them.
    last_idx = max(ORDER.index(m) for layer, m in loras if layer == num_layers - 1)
    needed = 6 if last_idx >= 6 else 4 if last_idx >= 4 else 3 if last_idx >= 3 else 0

    def linear(x, layer, module):
        p = module_path(layer, module)
        pruned = mode == "profile" and layer == num_layers - 1
        y = None if pruned and ORDER.index(module) >= needed else F.linear(x, w[p + ".weight"], w.get(p + ".bias"))
        lora = loras.get((layer, module))
        if lora is not None:
            delta = F.linear(F.linear(x, lora["A"]), lora["B"]) * lora["scale"]
            taps.append(delta.pow(2).sum(-1))
            y = delta if y is None else y + delta
        if pruned and ORDER.index(module) == last_idx:
            raise TapsDone()
        # A skipped projection that nothing reads before TapsDone: a cheap stand-in of the right shape.
        return torch.zeros(x.shape[0], w[p + ".weight"].shape[0]) if y is None else y

    try:
        h = decoder(cfg, w, ids, num_layers, linear, rope, mask)
    except TapsDone:
        return torch.stack(taps), None
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = F.linear(rms_norm(h, w["model.norm.weight"], cfg["rms_norm_eps"]), head)
    return torch.stack(taps), logits


def decoder(cfg, w, ids, num_layers, linear, rope, mask):
    H = cfg["hidden_size"]
    nH = cfg["num_attention_heads"]
    nKV = cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or H // nH
    eps = cfg["rms_norm_eps"]
    S = ids.shape[0]
    h = F.embedding(ids, w["model.embed_tokens.weight"])
    for i in range(num_layers):
        p = f"model.layers.{i}"
        x = rms_norm(h, w[p + ".input_layernorm.weight"], eps)
        q = linear(x, i, "q_proj").view(S, nKV, nH // nKV, D).permute(1, 2, 0, 3)
        k = linear(x, i, "k_proj").view(S, nKV, 1, D).permute(1, 2, 0, 3)
        v = linear(x, i, "v_proj").view(S, nKV, 1, D).permute(1, 2, 0, 3)
        q, k = rope(q), rope(k)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + mask
        ctx = torch.matmul(torch.softmax(scores, -1), v)  # [nKV, grp, S, D]
        attn = ctx.permute(2, 0, 1, 3).reshape(S, nH * D)
        h = h + linear(attn, i, "o_proj")
        x2 = rms_norm(h, w[p + ".post_attention_layernorm.weight"], eps)
        gate = linear(x2, i, "gate_proj")
        h = h + linear(F.silu(gate) * linear(x2, i, "up_proj"), i, "down_proj")
    return h


def loaded_blas():
    """The BLAS libraries this process has loaded (to check the reference is a fair one)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.split()[-1]
            if "blas" in name.lower() or "mkl" in name.lower():
                libs.add(os.path.basename(name))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--ids", required=True, help="JSON file with a list of token ids")
    ap.add_argument("--mode", choices=["profile", "forward"], required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (BLAS threads: OPENBLAS_NUM_THREADS)")
    ap.add_argument("--device", default="cpu", help="torch device: cpu, or cuda for the GPU comparison")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w = load_model(a.model)
    loras = load_adapter(a.adapter)
    with open(a.ids) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    cuda = a.device.startswith("cuda")
    if cuda:
        # Everything the pass creates (RoPE tables, masks) lands on the GPU too; weights are copied there once.
        torch.set_default_device(a.device)
        w = {k: v.to(a.device) for k, v in w.items()}
        loras = {k: {n: (t.to(a.device) if torch.is_tensor(t) else t) for n, t in v.items()} for k, v in loras.items()}
        ids = ids.to(a.device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for rep in range(a.reps + 1):
            sync()
            t0 = time.perf_counter()
            taps, logits = forward(cfg, w, loras, ids, a.mode)
            sync()
            dt = time.perf_counter() - t0
            if rep > 0:  # the first run is a warm-up (page faults of the memory map, allocator)
                times.append(dt)
    with open(a.out, "w") as f:
        json.dump({"taps": taps.flatten().tolist(), "last_logits": logits[-1].tolist() if logits is not None else None}, f)
    gpu_peak = torch.cuda.max_memory_allocated() if cuda else None
    print(json.dumps({
        "times": times, "best": min(times), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "blas": loaded_blas(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "device": a.device, "gpu_peak_bytes": gpu_peak,
    }))


if __name__ == "__main__":
    main()
