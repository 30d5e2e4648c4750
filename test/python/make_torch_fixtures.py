"""Writes tiny random models, PEFT LoRA adapters and token-id datasets for the torch-engine tests.

Every model is built from a small config by transformers' own classes and written with save_pretrained; every
adapter is made by PEFT's get_peft_model and written with PEFT's save_pretrained, so the files are exactly what
users' tools produce. Weights are random with a fixed seed; lora_B is made non-zero (PEFT initialises it to zero,
which would make every LoRA output zero).

Usage: python3 make_torch_fixtures.py OUT_DIR [llama|qwen2|gpt2|roberta ...]
Writes OUT_DIR/<arch>/{model/, adapter/, data.jsonl}.
"""
import json
import os
import random
import sys

import torch
import transformers
from peft import LoraConfig, get_peft_model

VOCAB = 96

CONFIGS = {
    # Grouped-query attention: 4 query heads over 2 key/value heads.
    "llama": lambda: transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.2,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    "qwen2": lambda: transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, initializer_range=0.2,
        tie_word_embeddings=True, use_sliding_window=False),
    "gpt2": lambda: transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_positions=64, initializer_range=0.2,
        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1),
    "roberta": lambda: transformers.RobertaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        initializer_range=0.2, num_labels=3),
}

# Different PEFT options per architecture, so that between them the fixtures cover rsLoRA, rank and alpha
# patterns, layers_to_transform, fan_in_fan_out (GPT-2's Conv1D) and a SEQ_CLS head saved through modules_to_save.
LORAS = {
    "llama": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                  rank_pattern={"o_proj": 2}, alpha_pattern={"layers.1.self_attn.v_proj": 12}, task_type="CAUSAL_LM"),
    "qwen2": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "gate_proj"], use_rslora=True,
                  task_type="CAUSAL_LM"),
    "gpt2": dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                 layers_to_transform=[0, 2], task_type="CAUSAL_LM"),
    "roberta": dict(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS"),
}


def write(out, arch, seed=0):
    torch.manual_seed(seed)
    config = CONFIGS[arch]()
    cls = transformers.AutoModelForSequenceClassification if arch == "roberta" else transformers.AutoModelForCausalLM
    model = cls.from_config(config)
    model.save_pretrained(os.path.join(out, "model"), safe_serialization=True)
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, **LORAS[arch]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    peft_model.save_pretrained(os.path.join(out, "adapter"), safe_serialization=True)
    rng = random.Random(seed + 1)
    with open(os.path.join(out, "data.jsonl"), "w") as f:
        for i in range(10):
            n = rng.randint(3, 12)
            if arch == "roberta":
                # <s> … </s>, never the padding id 1 inside a sequence (RoBERTa derives positions from it).
                ids = [0] + [rng.randrange(3, VOCAB) for _ in range(n)] + [2]
                f.write(json.dumps({"input_ids": ids, "label": i % 3}) + "\n")
            else:
                f.write(json.dumps({"input_ids": [rng.randrange(3, VOCAB) for _ in range(n)]}) + "\n")


if __name__ == "__main__":
    target = sys.argv[1]
    for a in sys.argv[2:] or list(CONFIGS):
        write(os.path.join(target, a), a)
