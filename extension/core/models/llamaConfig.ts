/**
 * config.json of the Llama family (llama, mistral, qwen2): dimensions, grouped-query heads, RMSNorm epsilon, RoPE
 * base and scaling (linear, llama3), biases (qwen2's q/k/v, llama's attention_bias and mlp_bias). RoPE settings are
 * read in both layouts: transformers 4's `rope_theta` + `rope_scaling`, and transformers 5's one `rope_parameters`
 * object (rope_theta, rope_type and the scaling fields), which its save_pretrained writes instead.
 */
import { LoraDropError, describeValue } from "../util/errors";
import { activation, checkArchitectures, optionalBool, positiveInt, type ModelConfig, type RopeScaling } from "./config";

/** The Hugging Face classes whose checkpoints hold a Llama-family decoder with its LM head (or the bare decoder). */
export const CAUSAL_CLASSES = {
  llama: ["LlamaForCausalLM", "LlamaModel"],
  mistral: ["MistralForCausalLM", "MistralModel"],
  qwen2: ["Qwen2ForCausalLM", "Qwen2Model"],
} as const;
/** The activations the decoder's MLP implements (Hugging Face's ACT2FN names for SiLU). */
export const DECODER_ACTIVATIONS = ["silu", "swish"] as const;

/** Parses a llama, mistral or qwen2 config.json into the engine's config. */
export function parseLlamaConfig(file: string, c: Record<string, unknown>, modelType: "llama" | "mistral" | "qwen2"): ModelConfig {
  const hiddenSize = positiveInt(file, c, "hidden_size", 1 << 16);
  const numHeads = positiveInt(file, c, "num_attention_heads", 1024);
  const numKvHeads = positiveInt(file, c, "num_key_value_heads", 1024, numHeads);
  const numLayers = positiveInt(file, c, "num_hidden_layers", 1024);
  const vocabSize = positiveInt(file, c, "vocab_size", 1 << 22);
  const intermediateSize = positiveInt(file, c, "intermediate_size", 1 << 18);
  if (numHeads % numKvHeads !== 0) {
    throw new LoraDropError("CONFIG_INVALID", `num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`, file, "num_key_value_heads");
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) headDim = positiveInt(file, c, "head_dim", 4096);
  else {
    if (hiddenSize % numHeads !== 0) throw new LoraDropError("CONFIG_INVALID", `hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads})`, file, "hidden_size");
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) throw new LoraDropError("CONFIG_INVALID", `head dimension ${headDim} must be even for rotary embeddings`, file, "head_dim");
  const eps = c.rms_norm_eps ?? 1e-6;
  if (typeof eps !== "number" || !(eps > 0 && eps < 1)) throw new LoraDropError("CONFIG_INVALID", `rms_norm_eps must be in (0, 1), got ${describeValue(eps)}`, file, "rms_norm_eps");
  const ropeParameters = ropeParametersOf(file, c.rope_parameters);
  const theta = c.rope_theta ?? ropeParameters?.rope_theta ?? 10000;
  if (typeof theta !== "number" || !(theta > 1) || !Number.isFinite(theta)) throw new LoraDropError("CONFIG_INVALID", `rope_theta must be > 1, got ${describeValue(theta)}`, file, "rope_theta");
  checkArchitectures(file, c, CAUSAL_CLASSES[modelType], modelType);
  activation(file, c, "hidden_act", DECODER_ACTIVATIONS, "silu", modelType);
  const attentionBias = optionalBool(file, c, "attention_bias", false);
  const mlpBias = optionalBool(file, c, "mlp_bias", false);
  const tie = optionalBool(file, c, "tie_word_embeddings", false);
  if (c.max_position_embeddings !== undefined && c.max_position_embeddings !== null) positiveInt(file, c, "max_position_embeddings", 1 << 24);
  // Mistral masks attention outside its window (transformers' eager and SDPA paths do); Qwen2's eager path ignores
  // its window, so only the type of its fields is checked.
  const slidingWindow = modelType === "mistral" && c.sliding_window !== undefined && c.sliding_window !== null ? positiveInt(file, c, "sliding_window", 1 << 24) : undefined;
  if (modelType === "qwen2") {
    optionalBool(file, c, "use_sliding_window", false);
    if (c.sliding_window !== undefined && c.sliding_window !== null) positiveInt(file, c, "sliding_window", 1 << 24);
  }
  return {
    architecture: modelType,
    hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize, vocabSize,
    rmsNormEps: eps, ropeTheta: theta,
    ropeScaling: parseRopeScaling(file, c.rope_scaling ?? ropeParameters),
    tieWordEmbeddings: tie,
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: attentionBias,
    mlpBias,
    ...(slidingWindow !== undefined ? { slidingWindow } : {}),
  };
}

/**
 * transformers 5's `rope_parameters`, when it is one object for the whole model (nested per layer type, as some
 * other architectures have it, is not a Llama-family layout).
 */
function ropeParametersOf(file: string, raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new LoraDropError("CONFIG_INVALID", "rope_parameters must be an object", file, "rope_parameters");
  const r = raw as Record<string, unknown>;
  if (Object.values(r).some((v) => typeof v === "object" && v !== null && !Array.isArray(v))) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", "rope_parameters per layer type are not supported for this architecture", file, "rope_parameters");
  }
  return r;
}

function parseRopeScaling(file: string, raw: unknown): RopeScaling | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new LoraDropError("CONFIG_INVALID", "rope_scaling must be an object", file, "rope_scaling");
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  const factor = r.factor;
  if (type === "default") return undefined;
  if (typeof factor !== "number" || !(factor > 0) || !Number.isFinite(factor)) throw new LoraDropError("CONFIG_INVALID", "rope_scaling.factor must be a positive number", file, "rope_scaling");
  if (type === "linear") return { type: "linear", factor };
  if (type === "llama3") {
    const num = (key: string, fallback: number): number => {
      const v = r[key] ?? fallback;
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new LoraDropError("CONFIG_INVALID", `rope_scaling.${key} must be a positive number, got ${describeValue(v)}`, file, `rope_scaling.${key}`);
      return v;
    };
    return {
      type: "llama3", factor,
      lowFreqFactor: num("low_freq_factor", 1),
      highFreqFactor: num("high_freq_factor", 4),
      originalMaxPositionEmbeddings: num("original_max_position_embeddings", 8192),
    };
  }
  throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `rope_scaling type ${describeValue(type)} is not supported (supported: linear, llama3)`, file, "rope_scaling");
}
