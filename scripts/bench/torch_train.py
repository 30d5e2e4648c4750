#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench:train`: one LoRA training step (forward, causal-LM loss, backward,
AdamW) on the same safetensors weights and the same LoRA layout as the engine's training graph.

It reuses torch_reference.py's loaders and decoder, so the forward pass is the one `npm run bench` measures. Base
weights are memory-mapped copy-on-write and frozen (requires_grad False), so autograd computes only input gradients
through them, as the engine does; LoRA A/B are the only parameters. Loss: mean next-token cross-entropy over all
positions.

Prints one JSON object: best/all step times, peak RSS (ru_maxrss), the BLAS libraries loaded, the first step's
loss and the gradient norm, for the agreement check with onnxruntime.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

from torch_reference import decoder, load_adapter, load_model, loaded_blas, module_path, rms_norm, rope_and_mask


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

    cfg, w = load_model(a.model)
    loras = load_adapter(a.adapter)
    for pair in loras.values():
        for which in ("A", "B"):
            pair[which] = torch.nn.Parameter(pair[which].clone())
    params = [pair[which] for pair in loras.values() for which in ("A", "B")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    with open(a.ids) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    rope, mask = rope_and_mask(cfg, ids.shape[0])

    def linear(x, layer, module):
        p = module_path(layer, module)
        y = F.linear(x, w[p + ".weight"], w.get(p + ".bias"))
        lora = loras.get((layer, module))
        return y if lora is None else y + F.linear(F.linear(x, lora["A"]), lora["B"]) * lora["scale"]

    def loss_fn():
        h = decoder(cfg, w, ids, cfg["num_hidden_layers"], linear, rope, mask)
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        logits = F.linear(rms_norm(h, w["model.norm.weight"], cfg["rms_norm_eps"]), head)
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
