/**
 * The engine's view of a model's config.json: the fields the graphs need, validated. Each architecture parses its
 * own config.json next to its graph (llama.ts, gpt2.ts, encoder.ts); hfModel.ts picks the parser by model_type.
 */
import { LoraDropError, describeValue } from "../util/errors";

/** Architectures the engine builds (Llama-family decoders, GPT-2, and RoBERTa/BERT sequence classifiers). */
export const SUPPORTED_ARCHITECTURES = ["llama", "mistral", "qwen2", "gpt2", "roberta", "bert"] as const;
/** One of the supported architectures. */
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** RoPE scaling variants we implement. */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/** The fields of config.json the graph needs, validated. */
export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (qwen2, or llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (llama's attention_bias applies to o_proj too). */
  oBias: boolean;
  mlpBias: boolean;
  /** LayerNorm epsilon (gpt2, roberta, bert). */
  layerNormEps?: number;
  /** Rows of the learned position table (gpt2, roberta, bert). */
  maxPositions?: number;
  /** Rows of the token-type table (roberta, bert). */
  typeVocabSize?: number;
  /** Padding token (roberta's position ids depend on it). */
  padTokenId?: number;
  /** Classes of a sequence-classification head. */
  numLabels?: number;
  /** What the graph's logits are: next-token logits or one row of class logits per sequence. */
  head?: "causal-lm" | "seq-cls";
  /** Mistral's sliding window: a token attends to itself and the window − 1 tokens before it. */
  slidingWindow?: number;
}

/** A config.json field that must be a positive integer up to `max` (`fallback` when absent). */
export function positiveInt(file: string, raw: Record<string, unknown>, key: string, max: number, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > max) {
    throw new LoraDropError("CONFIG_INVALID", `${key} must be a positive integer up to ${max}, got ${describeValue(v)}`, file, key);
  }
  return v;
}

/** A config.json field that must be a number in (0, 1), such as a norm's epsilon (`fallback` when absent). */
export function epsilon(file: string, raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0 && v < 1)) throw new LoraDropError("CONFIG_INVALID", `${key} must be in (0, 1), got ${describeValue(v)}`, file, key);
  return v;
}

/** A config.json flag: true or false, or absent/null for `fallback`; anything else ("yes", 1) is an error. */
export function optionalBool(file: string, raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new LoraDropError("CONFIG_INVALID", `${key} must be true or false, got ${describeValue(v)}`, file, key);
  return v;
}

/** A config.json flag that this engine supports only at one value (the graph has no other variant). */
export function requireFlag(file: string, raw: Record<string, unknown>, key: string, supported: boolean, fallback: boolean, why: string): void {
  if (optionalBool(file, raw, key, fallback) !== supported) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `${key}: ${!supported} is not supported (${why})`, file, key);
  }
}

/** The activation named by `key` (absent: `fallback`), which must be one of `supported`. */
export function activation(file: string, raw: Record<string, unknown>, key: string, supported: readonly string[], fallback: string, family: string): string {
  const v = raw[key] ?? fallback;
  if (typeof v !== "string" || !supported.includes(v)) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `${key} ${describeValue(v)} is not supported for ${family} (supported: ${supported.join(", ")})`, file, key);
  }
  return v;
}

/**
 * config.json's `architectures` (the Hugging Face class the checkpoint was saved from): absent, or a list of strings
 * whose first is one of `accepted`. A sequence-classification (or other head) class on the causal-LM path is
 * refused: its weights hold a `score` head, not the LM head the graph computes logits with.
 */
export function checkArchitectures(file: string, raw: Record<string, unknown>, accepted: readonly string[], family: string): string | undefined {
  const archs = raw.architectures;
  if (archs === undefined || archs === null) return undefined;
  if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === "string")) {
    throw new LoraDropError("CONFIG_INVALID", `architectures must be a non-empty list of class names, got ${describeValue(archs)}`, file, "architectures");
  }
  const name = archs[0] as string;
  if (!accepted.includes(name)) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `architectures ${describeValue(archs)} is not supported for ${family} (supported: ${accepted.join(", ")})`, file, "architectures");
  }
  return name;
}
