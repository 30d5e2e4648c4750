/**
 * RoPE settings of a Llama-family config.json in transformers 4's layout (rope_theta, rope_scaling) and in
 * transformers 5's (one rope_parameters object, which its save_pretrained writes instead): the same engine config.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelConfig } from "../../../../extension/core/models/hfModel";
import { isLoraDropError } from "../../../../extension/core/util/errors";

const base = {
  model_type: "llama", architectures: ["LlamaForCausalLM"], hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2,
  num_hidden_layers: 2, vocab_size: 100, intermediate_size: 128, rms_norm_eps: 1e-5,
};
const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

test("transformers 5's rope_parameters give the config transformers 4's rope_theta + rope_scaling give", () => {
  const v4 = parseModelConfig("config.json", { ...base, rope_theta: 500000, rope_scaling: { rope_type: "llama3", ...scaling } });
  const v5 = parseModelConfig("config.json", { ...base, rope_parameters: { rope_theta: 500000, rope_type: "llama3", ...scaling } });
  assert.deepEqual(v5, v4);
  assert.equal(v5.ropeTheta, 500000);
  assert.equal(v5.ropeScaling?.type, "llama3");
  const plain = parseModelConfig("config.json", { ...base, rope_parameters: { rope_theta: 1e6, rope_type: "default" } });
  assert.deepEqual([plain.ropeTheta, plain.ropeScaling], [1e6, undefined]);
  assert.throws(() => parseModelConfig("config.json", { ...base, rope_parameters: { full_attention: { rope_theta: 1e4 } } }),
    (e: unknown) => isLoraDropError(e) && e.code === "UNSUPPORTED_ARCHITECTURE" && e.field === "rope_parameters");
});
