"""The tokenised examples file and padded batches.

Tokenisation happens on the Node side (one tokenizer for both engines); it writes one JSON object per line:
`{"ids": [...], "label"?: int, "type_ids"?: [...], "loss_mask"?: [0|1, ...]}`. The attention mask is implied by
the length; `loss_mask` (absent: every token after the first is a target) marks the causal-LM target tokens.
"""
import json

import torch

from .errors import EngineError


class Example:
    """One tokenised example."""

    __slots__ = ("ids", "label", "type_ids", "loss_mask")

    def __init__(self, ids, label=None, type_ids=None, loss_mask=None):
        self.ids = ids
        self.label = label
        self.type_ids = type_ids
        self.loss_mask = loss_mask if loss_mask is not None else [0] + [1] * (len(ids) - 1)


def _int_list(v):
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)


def read_examples(path):
    """Reads and checks the examples file; errors name the file and line."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise EngineError("FILE_NOT_FOUND", f"the tokenised examples cannot be read ({e.strerror})", path)
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError:
                raise EngineError("DATASET_INVALID", f"line {n} is not JSON", path, f"line {n}")
            ids = o.get("ids") if isinstance(o, dict) else None
            if not _int_list(ids) or not ids:
                raise EngineError("DATASET_INVALID", f"line {n}: ids must be a non-empty list of token ids", path, "ids")
            for key in ("type_ids", "loss_mask"):
                if o.get(key) is not None and (not _int_list(o[key]) or len(o[key]) != len(ids)):
                    raise EngineError("DATASET_INVALID", f"line {n}: {key} must have one entry per token", path, key)
            label = o.get("label")
            if label is not None and (not isinstance(label, int) or isinstance(label, bool) or label < 0):
                raise EngineError("DATASET_INVALID", f"line {n}: label must be a non-negative integer", path, "label")
            out.append(Example(ids, label, o.get("type_ids"), o.get("loss_mask")))
    if not out:
        raise EngineError("DATASET_EMPTY", "the tokenised examples file is empty", path)
    return out


def count_targets(examples, task):
    """Loss terms of a group of examples: one per example for a classifier, else its target tokens after the first."""
    if task == "seq-cls":
        return len(examples)
    return sum(sum(e.loss_mask[1:]) for e in examples)


class Batch:
    """Right-padded tensors of a group of examples (as extension/core/batch.ts pads them)."""

    def __init__(self, examples, pad_id, device):
        seq = max(len(e.ids) for e in examples)
        rows = len(examples)
        self.examples = examples
        self.input_ids = torch.full((rows, seq), pad_id, dtype=torch.long)
        self.attention_mask = torch.zeros((rows, seq), dtype=torch.long)
        self.targets = torch.zeros((rows, seq), dtype=torch.bool)
        with_types = any(e.type_ids is not None for e in examples)
        self.token_type_ids = torch.zeros((rows, seq), dtype=torch.long) if with_types else None
        for b, e in enumerate(examples):
            n = len(e.ids)
            self.input_ids[b, :n] = torch.tensor(e.ids, dtype=torch.long)
            self.attention_mask[b, :n] = 1
            self.targets[b, :n] = torch.tensor(e.loss_mask, dtype=torch.bool)
            if with_types and e.type_ids is not None:
                self.token_type_ids[b, :n] = torch.tensor(e.type_ids, dtype=torch.long)
        labels = [e.label for e in examples]
        self.labels = torch.tensor(labels, dtype=torch.long, device=device) if None not in labels else None
        self.input_ids = self.input_ids.to(device)
        self.attention_mask = self.attention_mask.to(device)
        self.targets = self.targets.to(device)
        if self.token_type_ids is not None:
            self.token_type_ids = self.token_type_ids.to(device)
        self.tokens = int(sum(len(e.ids) for e in examples))

    def model_inputs(self, task):
        """Keyword arguments for a transformers model of `task`. A decoder is told not to build its key/value cache,
        which only generation uses (and which costs memory and a deprecation warning per call)."""
        kw = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            kw["token_type_ids"] = self.token_type_ids
        if task == "causal-lm":
            kw["use_cache"] = False
        return kw
