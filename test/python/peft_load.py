#!/usr/bin/env python3
"""Loads adapters written by lora-drop with the real transformers + PEFT and reports what they compute.

Input: a JSON manifest (argv[1]) listing cases {id, model_dir, adapter_dir (or null for the base model), head
("causal-lm" | "seq-cls"), input_ids}. For each case: the base model is loaded with transformers'
Auto*.from_pretrained, the adapter with PeftModel.from_pretrained, and the report (argv[2], JSON) gives
 - warnings: every warning and log record of WARNING or above raised while loading (PEFT warns about unknown
   adapter_config.json keys and missing adapter keys),
 - unknown_config_keys: adapter_config.json keys that are not LoraConfig fields (PEFT <= 0.13 refuses those),
 - unexpected_keys: tensors of adapter_model.safetensors that PEFT's own state dict of the loaded model does not
   have (PEFT ignores them silently: a shared LoRA stored where PEFT does not look),
 - missing_keys: LoRA tensors of the loaded model that the file does not provide,
 - logits: the model's logits for input_ids (float32, eval mode, no dropout), as nested lists,
 - error: the exception, if loading or running failed.
"""
import dataclasses
import json
import logging
import sys
import warnings

import torch
from peft import LoraConfig, PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification


class Collect(logging.Handler):
    """Keeps every log record of WARNING or above."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


def file_keys(adapter_dir):
    with safe_open(f"{adapter_dir}/adapter_model.safetensors", framework="pt") as f:
        return set(f.keys())


def run_case(case):
    out = {"id": case["id"], "warnings": [], "unknown_config_keys": [], "unexpected_keys": [], "missing_keys": []}
    handler = Collect()
    for name in ("peft", "transformers"):
        logging.getLogger(name).addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = AutoModelForSequenceClassification if case["head"] == "seq-cls" else AutoModelForCausalLM
            model = auto.from_pretrained(case["model_dir"], torch_dtype=torch.float32, attn_implementation="eager")
            adapter_dir = case.get("adapter_dir")
            if adapter_dir:
                with open(f"{adapter_dir}/adapter_config.json") as f:
                    config = json.load(f)
                fields = {f.name for f in dataclasses.fields(LoraConfig)}
                out["unknown_config_keys"] = sorted(k for k in config if k not in fields)
                model = PeftModel.from_pretrained(model, adapter_dir)
                expected = set(get_peft_model_state_dict(model).keys())
                stored = file_keys(adapter_dir)
                out["unexpected_keys"] = sorted(stored - expected)
                out["missing_keys"] = sorted(k for k in expected - stored if "lora_" in k)
            model.eval()
            with torch.no_grad():
                ids = torch.tensor(case["input_ids"], dtype=torch.long)
                extra = {} if case["head"] == "seq-cls" else {"use_cache": False}
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
            out["logits"] = logits.float().tolist()
        out["warnings"] = [str(w.message) for w in caught] + handler.messages
    except Exception as exc:  # reported, not raised: the test names the case and the error
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["warnings"] = handler.messages
    finally:
        for name in ("peft", "transformers"):
            logging.getLogger(name).removeHandler(handler)
    return out


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    torch.manual_seed(0)
    report = {"versions": {"torch": torch.__version__, "peft": __import__("peft").__version__, "transformers": __import__("transformers").__version__},
              "cases": [run_case(c) for c in manifest["cases"]]}
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
