"""The `evaluate` command: the mean loss of the base model and of adapters over the example batches, with dropout
off, and for a sequence classifier the class each predicts for every example (argmax of the head's logits) — the
held-out scores of the pipeline's report, measured where the pipeline trained.

Each adapter is loaded onto a freshly loaded base model: PEFT injects its layers into the model it wraps, so a model
once wrapped is not the base model any more, and loading the next adapter beside the first (load_adapter) would read
its adapter_config.json without the filtering lora_config() applies for older PEFT releases.
"""
import gc
import time

import torch

from . import protocol
from .data import Batch, count_targets, read_examples
from .errors import EngineError
from .modeling import attach_lora, load_model, lora_config, loss_of_logits


def run(req, device, dtype):
    """Evaluates every entry of `adapters` ({dir, loraConfig}, or null for the base model); returns the result line."""
    task = req.choice("task", ("causal-lm", "seq-cls"))
    examples = read_examples(req.get("examples", str))
    batches = req.get("batches", list)
    items = req.get("adapters", list)
    pad = req.get("padTokenId", int, 0)
    model_dir = req.get("model", str)
    started = time.time()
    evaluations = []
    for n, item in enumerate(items):
        model = load_model(model_dir, task, device, dtype)
        if item is not None:
            if not (isinstance(item, dict) and isinstance(item.get("dir"), str)
                    and isinstance(item.get("loraConfig"), dict)):
                raise EngineError("INVALID_ARGUMENT", f"adapters[{n}] must be {{dir, loraConfig}} or null", req.path,
                                  "adapters")
            model = attach_lora(model, lora_config(item["loraConfig"], True, item["dir"]), item["dir"], False, device)
        evaluations.append(evaluate(model, batches, examples, task, pad, device))
        protocol.progress(n + 1, len(items), f"evaluated {n + 1} of {len(items)}")
        # The next model is loaded only once this one is gone: two 7B models need not fit the device at once.
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"type": "result", "command": "evaluate", "device": device.type, "dtype": str(dtype).split(".")[-1],
            "seconds": time.time() - started, "evaluations": evaluations}


def evaluate(model, batches, examples, task, pad, device, on_batch=None):
    """{"loss": mean over every loss term, "predicted"?: class per example (-1 where not evaluated)}; `on_batch`
    is told the tokens done after each batch."""
    groups = [[examples[i] for i in g] for g in batches]
    total = sum(count_targets(g, task) for g in groups)
    if total == 0:
        raise EngineError("DATASET_EMPTY", "no example has a token to predict", field="batches")
    summed = 0.0
    predicted = [-1] * len(examples)
    done = 0
    with torch.no_grad():
        for indices, group in zip(batches, groups):
            batch = Batch(group, pad, device)
            logits = model(**batch.model_inputs(task)).logits.float()
            if count_targets(group, task) > 0:
                summed += float(loss_of_logits(logits, batch, task))
            if task == "seq-cls":
                for i, c in zip(indices, logits.argmax(-1).tolist()):
                    predicted[i] = int(c)
            done += batch.tokens
            if on_batch is not None:
                on_batch(done)
    loss = summed / total
    if loss != loss or loss in (float("inf"), float("-inf")):
        raise EngineError("NUMERICAL", f"the evaluation loss is {loss}", field="batches")
    return {"loss": loss, **({"predicted": predicted} if task == "seq-cls" else {})}
