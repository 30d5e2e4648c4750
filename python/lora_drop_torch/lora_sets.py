"""The `evaluate-sets` command: the loss of many LoRA configurations of one adapter over the same batches — the
sweep's candidates (the pruned adapters `prune` writes) and the ablation criterion's adapters without one layer.

The model is loaded once through its Auto class and the adapter once through PEFT (its targets, ranks, scalings and
a classifier's saved head); each configuration is then set into PEFT's own LoRA layers: a pair's values are copied
into lora_A / lora_B, and a layer the configuration leaves without LoRA is switched off (enable_adapters(False),
so it computes its base layer alone, exactly). Nothing of the model is re-implemented. The Node side builds every
configuration (the shared layers' best rank-r start included) and hands the distinct tensors over in one
safetensors file; each configuration names, per LoRA module of the request, its [A, B] keys there, or null.
"""
import time

import torch

from . import protocol
from .data import read_examples
from .errors import EngineError
from .evaluate import evaluate
from .modeling import attach_lora, load_model, lora_config, lora_modules
from .outputs import load_tensors


def run(req, device, dtype):
    """Scores every configuration of `sets` in order; returns the result line (one evaluation per configuration)."""
    task = req.choice("task", ("causal-lm", "seq-cls"))
    examples = read_examples(req.get("examples", str))
    batches = req.get("batches", list)
    pad = req.get("padTokenId", int, 0)
    adapter_dir = req.get("adapter", str)
    tensors_file = req.get("tensorsFile", str)
    sets = req.get("sets", list)
    model = load_model(req.get("model", str), task, device, dtype)
    peft_model = attach_lora(model, lora_config(req.get("loraConfig", dict), True, adapter_dir), adapter_dir, False,
                             device)
    pairs = lora_modules(peft_model, req.get("loras", list), adapter_dir)
    tensors = load_tensors(tensors_file)
    for n, entries in enumerate(sets):
        check_set(n, entries, pairs, tensors, req.path, tensors_file)
    started = time.time()
    tokens = sum(len(examples[i].ids) for group in batches for i in group)
    total = tokens * len(sets)
    current = [False] * len(pairs)
    evaluations = []
    for n, entries in enumerate(sets):
        apply_set(entries, pairs, tensors, current)
        base = n * tokens

        def batch_done(done, n=n, base=base):
            protocol.progress(base + done, total, f"configuration {n + 1}/{len(sets)}")

        try:
            evaluations.append(evaluate(peft_model, batches, examples, task, pad, device, batch_done))
        except EngineError as e:
            if e.code != "NUMERICAL":
                raise
            raise EngineError("NUMERICAL", f"configuration {n + 1}: {e.message}: NaN or Inf in the model, the adapter "
                              "or a float overflow", req.path, "sets")
    return {"type": "result", "command": "evaluate-sets", "device": device.type, "dtype": str(dtype).split(".")[-1],
            "seconds": time.time() - started, "evaluations": evaluations}


def check_set(n, entries, pairs, tensors, request_file, tensors_file):
    """Checks configuration `n` before anything runs: one entry per LoRA module, each null or [A key, B key] naming
    tensors of the module's shapes."""
    if not isinstance(entries, list) or len(entries) != len(pairs):
        raise EngineError("INVALID_ARGUMENT", f"sets[{n}] must list one entry per LoRA module ({len(pairs)})",
                          request_file, "sets")
    for entry, (e, module) in zip(entries, pairs):
        if entry is None:
            continue
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(k, str) for k in entry)):
            raise EngineError("INVALID_ARGUMENT", f"sets[{n}]: the entry of {e['name']} must be [A key, B key] or "
                              "null", request_file, "sets")
        for key, weight in zip(entry, (module.lora_A["default"].weight, module.lora_B["default"].weight)):
            if key not in tensors:
                raise EngineError("TENSOR_MISSING", f"tensor {key} of sets[{n}] is not in the file", tensors_file, key)
            if tuple(tensors[key].shape) != tuple(weight.shape):
                raise EngineError("ADAPTER_SHAPE_MISMATCH", f"tensor {key} has shape {list(tensors[key].shape)}, but "
                                  f"{e['name']}'s LoRA weight has {list(weight.shape)}", tensors_file, key)


def apply_set(entries, pairs, tensors, current):
    """Puts one configuration into PEFT's LoRA layers; `current` remembers each module's entry, so only the modules
    that change are touched."""
    with torch.no_grad():
        for i, (entry, (_, module)) in enumerate(zip(entries, pairs)):
            if entry == current[i]:
                continue
            if entry is None:
                module.enable_adapters(False)
            else:
                module.lora_A["default"].weight.copy_(tensors[entry[0]])
                module.lora_B["default"].weight.copy_(tensors[entry[1]])
                module.enable_adapters(True)
            current[i] = entry
