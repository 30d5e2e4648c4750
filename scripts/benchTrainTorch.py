#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench:train`: one LoRA training step (forward, causal-LM loss, backward,
AdamW) on the same safetensors weights and the same LoRA layout as the engine's training graph.

Base weights are memory-mapped copy-on-write and frozen (requires_grad False), so autograd computes only input
gradients through them, as the engine does; LoRA A/B are the only parameters. The step mirrors
extension/core/models/llama.ts + train/trainGraph.ts: RMSNorm, RoPE, grouped-query attention by broadcasting K/V,
SwiGLU, LoRA s*B(A x), then mean next-token cross-entropy over all positions.

Prints one JSON object: best/all step times, peak RSS (ru_maxrss), the BLAS libraries loaded, the first step's
loss and the gradient norm, for the agreement check with onnxruntime.
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


def load_safetensors(path):
    """{name: tensor} memory-mapped copy-on-write from one safetensors file (F32 only: the bench model's dtype)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} has dtype {e['dtype']}; this reference reads F32 only")
        b, end = e["data_offsets"]
        arr = np.frombuffer(mm, dtype=np.float32, count=(end - b) // 4, offset=8 + n + b)
        out[name] = torch.from_numpy(arr.reshape(e["shape"]))
    return out


def loaded_blas():
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
    ap.add_argument("--adapter", required=True, help="PEFT adapter whose layout (and values) the LoRA starts from")
    ap.add_argument("--ids", required=True, help="JSON file with a list of token ids")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    w = {}
    for name in sorted(os.listdir(a.model)):
        if name.endswith(".safetensors"):
            w.update(load_safetensors(os.path.join(a.model, name)))
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    scale = acfg["lora_alpha"] / (math.sqrt(acfg["r"]) if acfg.get("use_rslora") else acfg["r"])
    loras = {}
    for key, t in load_safetensors(os.path.join(a.adapter, "adapter_model.safetensors")).items():
        parts = key.split(".")  # base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}.weight
        loras.setdefault((int(parts[4]), parts[6]), {})[parts[7][-1]] = torch.nn.Parameter(t.clone())
    params = [p for pair in loras.values() for p in pair.values()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    with open(a.ids) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)

    H, nH, nKV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or H // nH
    eps, S = cfg["rms_norm_eps"], ids.shape[0]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((S, S), float("-inf")).triu(1)

    def rms_norm(x, wt):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * wt

    def rope(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def linear(x, layer, module):
        p = f"model.layers.{layer}.{'mlp' if module in ('gate_proj', 'up_proj', 'down_proj') else 'self_attn'}.{module}"
        y = F.linear(x, w[p + ".weight"], w.get(p + ".bias"))
        lora = loras.get((layer, module))
        return y if lora is None else y + F.linear(F.linear(x, lora["A"]), lora["B"]) * scale

    def loss_fn():
        h = F.embedding(ids, w["model.embed_tokens.weight"])
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            x = rms_norm(h, w[p + ".input_layernorm.weight"])
            q = linear(x, i, "q_proj").view(S, nKV, nH // nKV, D).permute(1, 2, 0, 3)
            k = linear(x, i, "k_proj").view(S, nKV, 1, D).permute(1, 2, 0, 3)
            v = linear(x, i, "v_proj").view(S, nKV, 1, D).permute(1, 2, 0, 3)
            q, k = rope(q), rope(k)
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + mask
            ctx = torch.matmul(torch.softmax(scores, -1), v)
            h = h + linear(ctx.permute(2, 0, 1, 3).reshape(S, nH * D), i, "o_proj")
            x2 = rms_norm(h, w[p + ".post_attention_layernorm.weight"])
            h = h + linear(F.silu(linear(x2, i, "gate_proj")) * linear(x2, i, "up_proj"), i, "down_proj")
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        logits = F.linear(rms_norm(h, w["model.norm.weight"]), head)
        return F.cross_entropy(logits[:-1], ids[1:])

    times, first_loss, first_norm = [], None, None
    for rep in range(a.reps + 1):
        t0 = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        if rep == 0:
            first_loss = loss.item()
            first_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params))
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if rep > 0:  # the first step is a warm-up (page faults of the memory map, allocator)
            times.append(dt)
    print(json.dumps({
        "times": times, "best": min(times), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "blas": loaded_blas(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "first_loss": first_loss, "first_grad_norm": first_norm,
    }))


if __name__ == "__main__":
    main()
