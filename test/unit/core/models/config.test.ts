/**
 * Strict config.json: flags must be booleans, an unknown activation or head is refused with the supported list,
 * GPT-2 and encoder variants the graphs do not build are refused, Mistral's sliding window is read (and typed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelConfig } from "../../../../extension/core/models/hfModel";
import { LoraDropError } from "../../../../extension/core/util/errors";

const llama = { model_type: "llama", architectures: ["LlamaForCausalLM"], hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 32, vocab_size: 64, hidden_act: "silu" };
const gpt2 = { model_type: "gpt2", architectures: ["GPT2LMHeadModel"], n_embd: 16, n_head: 4, n_layer: 2, vocab_size: 64 };
const roberta = { model_type: "roberta", architectures: ["RobertaForSequenceClassification"], hidden_size: 16, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 32, vocab_size: 64 };

function refused(raw: Record<string, unknown>, code: string, field: string, re: RegExp): void {
  assert.throws(() => parseModelConfig("/m/config.json", raw), (e: unknown) => e instanceof LoraDropError && e.code === code && e.file === "/m/config.json" && e.field === field && re.test(e.message),
    `${JSON.stringify(raw).slice(0, 120)}`);
}

test("flags of the wrong type are CONFIG_INVALID; null or absent mean the default", () => {
  assert.equal(parseModelConfig("c", { ...llama, tie_word_embeddings: null }).tieWordEmbeddings, false);
  assert.equal(parseModelConfig("c", { ...llama, tie_word_embeddings: true }).tieWordEmbeddings, true);
  refused({ ...llama, tie_word_embeddings: "yes" }, "CONFIG_INVALID", "tie_word_embeddings", /must be true or false, got "yes"/);
  refused({ ...llama, attention_bias: 0 }, "CONFIG_INVALID", "attention_bias", /got 0/);
  refused({ ...llama, mlp_bias: "false" }, "CONFIG_INVALID", "mlp_bias", /true or false/);
});

test("an unknown activation or head is refused with what is supported", () => {
  refused({ ...llama, hidden_act: "relu" }, "UNSUPPORTED_ARCHITECTURE", "hidden_act", /hidden_act "relu" is not supported for llama \(supported: silu, swish\)/);
  assert.equal(parseModelConfig("c", { ...llama, hidden_act: "swish" }).architecture, "llama");
  refused({ ...llama, architectures: ["LlamaForSequenceClassification"] }, "UNSUPPORTED_ARCHITECTURE", "architectures", /supported: LlamaForCausalLM, LlamaModel/);
  refused({ ...llama, model_type: "qwen2", architectures: ["Qwen2ForTokenClassification"] }, "UNSUPPORTED_ARCHITECTURE", "architectures", /Qwen2ForCausalLM/);
  refused({ ...llama, architectures: "LlamaForCausalLM" }, "CONFIG_INVALID", "architectures", /non-empty list/);
  refused({ ...roberta, hidden_act: "gelu_new" }, "UNSUPPORTED_ARCHITECTURE", "hidden_act", /supported: gelu/);
  refused({ ...gpt2, architectures: ["GPT2ForSequenceClassification"] }, "UNSUPPORTED_ARCHITECTURE", "architectures", /GPT2LMHeadModel, GPT2Model/);
});

test("graph variants that are not built are refused: GPT-2's attention scaling and untied head, a decoder encoder", () => {
  refused({ ...gpt2, scale_attn_weights: false }, "UNSUPPORTED_ARCHITECTURE", "scale_attn_weights", /false is not supported/);
  refused({ ...gpt2, scale_attn_by_inverse_layer_idx: true }, "UNSUPPORTED_ARCHITECTURE", "scale_attn_by_inverse_layer_idx", /true is not supported/);
  refused({ ...gpt2, tie_word_embeddings: false }, "UNSUPPORTED_ARCHITECTURE", "tie_word_embeddings", /LM head is its token embedding/);
  refused({ ...gpt2, scale_attn_weights: "true" }, "CONFIG_INVALID", "scale_attn_weights", /true or false/);
  refused({ ...roberta, is_decoder: true }, "UNSUPPORTED_ARCHITECTURE", "is_decoder", /bidirectional encoder/);
});

test("Mistral's sliding window is read for the graph; Qwen2's is only typed (its eager attention ignores it)", () => {
  assert.equal(parseModelConfig("c", { ...llama, model_type: "mistral", architectures: ["MistralForCausalLM"], sliding_window: 4096 }).slidingWindow, 4096);
  assert.equal(parseModelConfig("c", { ...llama, model_type: "mistral", architectures: ["MistralForCausalLM"], sliding_window: null }).slidingWindow, undefined);
  assert.equal(parseModelConfig("c", { ...llama, model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], sliding_window: 8, use_sliding_window: false }).slidingWindow, undefined);
  refused({ ...llama, model_type: "mistral", architectures: ["MistralForCausalLM"], sliding_window: "4096" }, "CONFIG_INVALID", "sliding_window", /positive integer/);
  refused({ ...llama, model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], use_sliding_window: "no" }, "CONFIG_INVALID", "use_sliding_window", /true or false/);
});
