/**
 * config.json of GPT-2: n_embd/n_head/n_layer, the tanh GELU variants, LayerNorm epsilon, learned positions; the
 * LM head is always the token embedding.
 */
import { LoraDropError, describeValue } from "../util/errors";
import { checkArchitectures, epsilon, positiveInt, requireFlag, type ModelConfig } from "./config";

/** The Hugging Face classes whose checkpoints hold GPT-2 with its LM head (or the bare model). */
export const GPT2_CLASSES = ["GPT2LMHeadModel", "GPT2Model"] as const;

/** Parses a gpt2 config.json into the engine's config. */
export function parseGpt2Config(file: string, c: Record<string, unknown>): ModelConfig {
  const H = positiveInt(file, c, "n_embd", 1 << 16);
  const nH = positiveInt(file, c, "n_head", 1024);
  if (H % nH !== 0) throw new LoraDropError("CONFIG_INVALID", `n_embd (${H}) is not divisible by n_head (${nH})`, file, "n_embd");
  const act = c.activation_function ?? "gelu_new";
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `activation_function ${describeValue(act)} is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`, file, "activation_function");
  }
  const layerNormEps = epsilon(file, c, "layer_norm_epsilon", 1e-5);
  checkArchitectures(file, c, GPT2_CLASSES, "gpt2");
  // The graph is GPT-2's: attention scaled by 1/√d, no per-layer scaling, no cross-attention, the LM head tied.
  requireFlag(file, c, "scale_attn_weights", true, true, "the graph scales attention by 1/√head_dim");
  requireFlag(file, c, "scale_attn_by_inverse_layer_idx", false, false, "the graph has no per-layer attention scaling");
  requireFlag(file, c, "add_cross_attention", false, false, "a decoder with cross-attention needs encoder states");
  requireFlag(file, c, "tie_word_embeddings", true, true, "GPT-2's LM head is its token embedding");
  return {
    architecture: "gpt2", hiddenSize: H, numLayers: positiveInt(file, c, "n_layer", 1024), numHeads: nH, numKvHeads: nH, headDim: H / nH,
    intermediateSize: c.n_inner === null || c.n_inner === undefined ? 4 * H : positiveInt(file, c, "n_inner", 1 << 18),
    vocabSize: positiveInt(file, c, "vocab_size", 1 << 22), rmsNormEps: layerNormEps, ropeTheta: 10000,
    // GPT-2's lm_head is always its token embedding (GPT2LMHeadModel ties them).
    tieWordEmbeddings: true, qkvBias: true, oBias: true, mlpBias: true,
    layerNormEps, maxPositions: positiveInt(file, c, "n_positions", 1 << 20, 1024), head: "causal-lm",
  };
}
