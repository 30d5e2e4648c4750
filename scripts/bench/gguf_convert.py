"""Converts the benchmark's Llama (Hugging Face layout, safetensors) to a GGUF file for llama.cpp.

Uses llama.cpp's own gguf-py (its writer and its numpy quantizers) from the path given by --gguf-py, and only
numpy besides. The decoder projections and the token embedding take the requested type (F32, F16, Q8_0 or Q4_0);
the output head is Q8_0 in the quantized files (llama.cpp's quantize tool keeps it at higher precision too), the
norms stay F32. q_proj/k_proj rows are permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's
interleaved one, as llama.cpp's converter does, so both engines compute the same function. The benchmark model has
no tokenizer: a SentencePiece-style vocabulary of placeholder pieces (with the 256 byte tokens llama.cpp expects)
stands in, since the benchmark feeds token ids directly.

Usage: python3 gguf_convert.py --model DIR --out FILE.gguf --type F32|F16|Q8_0|Q4_0 --gguf-py DIR
"""
import argparse
import json
import os
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(model_dir):
    """Yields (name, memory-mapped float32 array) for every tensor of the model's shards."""
    files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    for f in files:
        path = os.path.join(model_dir, f)
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for name, t in header.items():
            if name == "__metadata__":
                continue
            if t["dtype"] not in ("F32", "F16", "BF16"):
                raise SystemExit(f"{path}: tensor {name} has dtype {t['dtype']}")
            begin, end = t["data_offsets"]
            raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n + begin, shape=(end - begin,))
            if t["dtype"] == "BF16":
                arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = raw.view(np.float32 if t["dtype"] == "F32" else np.float16)
            yield name, arr.reshape(t["shape"])


def permute(w, n_head):
    """Hugging Face's [half | half] RoPE rows to llama.cpp's interleaved pairs (per head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(name):
    """The GGUF tensor name of a Hugging Face Llama tensor."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    layer, rest = parts[2], ".".join(parts[3:])
    sub = {
        "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
    }[rest]
    return f"blk.{layer}.{sub}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--type", required=True, choices=["F32", "F16", "Q8_0", "Q4_0"])
    ap.add_argument("--gguf-py", required=True)
    a = ap.parse_args()
    sys.path.insert(0, a.gguf_py)
    import gguf  # noqa: E402  (llama.cpp's gguf-py, from the path above)

    cfg = json.load(open(os.path.join(a.model, "config.json")))
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg["hidden_size"] // n_head
    ftype = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
             "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[a.type]
    tmp = a.out + ".partial"
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name("lora-drop bench llama")
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-5))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_file_type(ftype)

    vocab = cfg["vocab_size"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(vocab - len(tokens))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(vocab - 259)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    qtypes = {"Q8_0": gguf.GGMLQuantizationType.Q8_0, "Q4_0": gguf.GGMLQuantizationType.Q4_0}
    # Without lm_head.weight (tied embeddings) llama.cpp reads token_embd for the logits.
    for name, t in read_safetensors(a.model):
        new = gguf_name(name)
        if new.endswith("attn_q.weight"):
            t = permute(t, n_head)
        elif new.endswith("attn_k.weight"):
            t = permute(t, n_kv)
        add(w, gguf, new, t, a.type, qtypes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, a.out)
    print(json.dumps({"out": a.out, "type": a.type, "bytes": os.path.getsize(a.out)}))


def add(w, gguf, name, t, kind, qtypes):
    """Adds one tensor in the file's type: norms F32, the head Q8_0 in quantized files, the rest `kind`."""
    if t.ndim == 1:
        w.add_tensor(name, np.asarray(t, dtype=np.float32))
        return
    if kind in DTYPES:
        w.add_tensor(name, np.asarray(t, dtype=DTYPES[kind]))
        return
    qtype = qtypes["Q8_0"] if name == "output.weight" else qtypes[kind]
    data = gguf.quants.quantize(np.asarray(t, dtype=np.float32), qtype)
    w.add_tensor(name, data, raw_dtype=qtype)


if __name__ == "__main__":
    main()
