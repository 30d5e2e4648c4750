/**
 * Per-architecture naming: where a layer's weights live in Hugging Face checkpoints, which Linear modules PEFT can
 * put a LoRA on, and their shapes. The Llama family keeps its short module ids (q_proj, …) for compatibility with
 * existing profiles; GPT-2 and the encoders use the module's path inside the layer (attn.c_attn,
 * attention.self.query, …) as its id, because their short names are ambiguous (GPT-2 has two c_proj, BERT three
 * dense). PEFT's list-form target_modules still match by suffix, so `["query", "value"]` or `["c_attn"]` work.
 */
import { LoraDropError, describeValue } from "../errors";
import type { Architecture, ModelConfig } from "../hfModel";
import type { PairEncoding } from "../dataset";

/** Llama-family module ids, in layer order. */
const LLAMA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
/** GPT-2 module ids (Conv1D layers), in layer order. */
export const GPT2_MODULES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"] as const;
/** RoBERTa/BERT module ids, in layer order. */
export const ENCODER_MODULES = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"] as const;

/** Sequence-classification heads the engine builds, by `architectures[0]` of config.json. */
export const SUPPORTED_HEADS = ["RobertaForSequenceClassification", "BertForSequenceClassification"] as const;
/**
 * Encoder checkpoints without a classification head that are accepted as the base of a PEFT SEQ_CLS adapter: the
 * adapter's modules_to_save brings the classifier (see models/index.ts withAdapterHead); profiling needs none.
 */
export const HEADLESS_ENCODERS = ["RobertaForMaskedLM", "RobertaModel", "BertForMaskedLM", "BertModel", "BertForPreTraining"] as const;

/** The Linear modules of one layer of an architecture, in forward order. */
export function archModules(arch: Architecture): readonly string[] {
  if (arch === "gpt2") return GPT2_MODULES;
  if (arch === "roberta" || arch === "bert") return ENCODER_MODULES;
  return LLAMA_MODULES;
}

/** PEFT's default LoRA targets for an architecture (the Llama family: the caller's default). */
export function defaultTargets(arch: Architecture, llamaDefault: string[]): string[] {
  if (arch === "gpt2") return ["c_attn"];
  if (isEncoder(arch)) return ["query", "value"];
  return llamaDefault;
}

/** Whether a PEFT target_modules entry names a module id of the architecture (exactly, or as its last path parts). */
export function targetMatches(arch: Architecture, target: string): boolean {
  return archModules(arch).some((m) => m === target || m.endsWith(`.${target}`));
}

/**
 * Longest sequence the model's learned position table covers (RoBERTa's positions start at padding_idx + 1), or
 * undefined for rotary models. Examples are truncated to it, as tokenizers truncate to model_max_length.
 */
export function positionLimit(cfg: ModelConfig): number | undefined {
  if (cfg.maxPositions === undefined) return undefined;
  return cfg.architecture === "roberta" ? cfg.maxPositions - (cfg.padTokenId ?? 1) - 1 : cfg.maxPositions;
}

/** The tokens per example to keep: `requested`, at most the model's position limit. */
export function tokensFor(cfg: ModelConfig, requested: number): number {
  return Math.min(requested, positionLimit(cfg) ?? requested);
}

/** How sentence pairs are tokenised for a model: through the tokenizer's pair template for encoders, joined for decoders. */
export function pairEncoding(cfg: ModelConfig): PairEncoding {
  return isEncoder(cfg.architecture) ? "pair" : "join";
}

/** Whether an architecture is a bidirectional encoder with a classification head. */
export function isEncoder(arch: Architecture): boolean {
  return arch === "roberta" || arch === "bert";
}

/** The checkpoint prefix of layer `i` (no trailing dot), e.g. `roberta.encoder.layer.3`. */
export function layerPrefix(arch: Architecture, layer: number, gpt2Root = "transformer."): string {
  if (arch === "gpt2") return `${gpt2Root}h.${layer}`;
  if (isEncoder(arch)) return `${arch}.encoder.layer.${layer}`;
  return `model.layers.${layer}`;
}

/** Matches a checkpoint weight name of a numbered layer; group 1 is the layer. */
export function layerWeightRe(arch: Architecture): RegExp {
  if (arch === "gpt2") return /^(?:transformer\.)?h\.(\d+)\./;
  if (isEncoder(arch)) return arch === "bert" ? /^bert\.encoder\.layer\.(\d+)\./ : /^roberta\.encoder\.layer\.(\d+)\./;
  return /^model\.layers\.(\d+)\./;
}

/** The module's path inside its layer (`self_attn.q_proj`, `attention.self.query`). */
export function modulePathInLayer(arch: Architecture, module: string): string {
  if (arch === "gpt2" || isEncoder(arch)) return module;
  return `${["gate_proj", "up_proj", "down_proj"].includes(module) ? "mlp" : "self_attn"}.${module}`;
}

/** in/out features of a LoRA module (GPT-2's c_attn is the fused q/k/v projection: out = 3·hidden). */
export function archModuleDims(cfg: ModelConfig, module: string): { in: number; out: number } | undefined {
  const H = cfg.hiddenSize, I = cfg.intermediateSize;
  if (cfg.architecture === "gpt2") {
    return ({ "attn.c_attn": { in: H, out: 3 * H }, "attn.c_proj": { in: H, out: H }, "mlp.c_fc": { in: H, out: I }, "mlp.c_proj": { in: I, out: H } } as Record<string, { in: number; out: number }>)[module];
  }
  if (isEncoder(cfg.architecture)) {
    if (module === "intermediate.dense") return { in: H, out: I };
    if (module === "output.dense") return { in: I, out: H };
    return (ENCODER_MODULES as readonly string[]).includes(module) ? { in: H, out: H } : undefined;
  }
  return undefined;
}

function int(file: string, c: Record<string, unknown>, key: string, max: number, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > max) {
    throw new LoraDropError("CONFIG_INVALID", `${key} must be a positive integer up to ${max}, got ${describeValue(v)}`, file, key);
  }
  return v;
}

function eps(file: string, c: Record<string, unknown>, key: string, fallback: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0 && v < 1)) throw new LoraDropError("CONFIG_INVALID", `${key} must be in (0, 1), got ${describeValue(v)}`, file, key);
  return v;
}

/** Parses the config.json of a gpt2, roberta or bert model into the engine's config. */
export function parseNonLlamaConfig(file: string, c: Record<string, unknown>, arch: "gpt2" | "roberta" | "bert"): ModelConfig {
  if (arch === "gpt2") {
    const H = int(file, c, "n_embd", 1 << 16);
    const nH = int(file, c, "n_head", 1024);
    if (H % nH !== 0) throw new LoraDropError("CONFIG_INVALID", `n_embd (${H}) is not divisible by n_head (${nH})`, file, "n_embd");
    const act = c.activation_function ?? "gelu_new";
    if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
      throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `activation_function ${describeValue(act)} is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`, file, "activation_function");
    }
    const layerNormEps = eps(file, c, "layer_norm_epsilon", 1e-5);
    return {
      architecture: "gpt2", hiddenSize: H, numLayers: int(file, c, "n_layer", 1024), numHeads: nH, numKvHeads: nH, headDim: H / nH,
      intermediateSize: c.n_inner === null || c.n_inner === undefined ? 4 * H : int(file, c, "n_inner", 1 << 18),
      vocabSize: int(file, c, "vocab_size", 1 << 22), rmsNormEps: layerNormEps, ropeTheta: 10000,
      // GPT-2's lm_head is always its token embedding (GPT2LMHeadModel ties them).
      tieWordEmbeddings: true, qkvBias: true, oBias: true, mlpBias: true,
      layerNormEps, maxPositions: int(file, c, "n_positions", 1 << 20, 1024), head: "causal-lm",
    };
  }
  const H = int(file, c, "hidden_size", 1 << 16);
  const nH = int(file, c, "num_attention_heads", 1024);
  if (H % nH !== 0) throw new LoraDropError("CONFIG_INVALID", `hidden_size (${H}) is not divisible by num_attention_heads (${nH})`, file, "hidden_size");
  const act = c.hidden_act ?? "gelu";
  if (act !== "gelu") throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `hidden_act ${describeValue(act)} is not supported for ${arch} (supported: gelu)`, file, "hidden_act");
  const pet = c.position_embedding_type ?? "absolute";
  if (pet !== "absolute") throw new LoraDropError("UNSUPPORTED_ARCHITECTURE", `position_embedding_type ${describeValue(pet)} is not supported (supported: absolute)`, file, "position_embedding_type");
  const archs = c.architectures;
  const headName = Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined;
  const prefix = arch === "roberta" ? "Roberta" : "Bert";
  const accepted = [...SUPPORTED_HEADS, ...HEADLESS_ENCODERS].filter((h) => h.startsWith(prefix));
  // A config without `architectures` is a bare encoder (RobertaModel/BertModel).
  if (headName !== undefined && !(accepted as string[]).includes(headName)) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE",
      `architectures ${describeValue(archs)} is not supported for ${arch}; supported heads: ${SUPPORTED_HEADS.join(", ")} (or a bare encoder, ${HEADLESS_ENCODERS.join(", ")}, whose adapter saves the classifier)`, file, "architectures");
  }
  // HF derives num_labels from id2label when present (PretrainedConfig), else from num_labels (default 2).
  const id2label = c.id2label;
  const numLabels = id2label && typeof id2label === "object" && !Array.isArray(id2label) ? Object.keys(id2label).length : int(file, c, "num_labels", 1 << 16, 2);
  if (numLabels < 1) throw new LoraDropError("CONFIG_INVALID", "id2label is empty", file, "id2label");
  const pad = c.pad_token_id ?? (arch === "roberta" ? 1 : 0);
  if (typeof pad !== "number" || !Number.isInteger(pad) || pad < 0) throw new LoraDropError("CONFIG_INVALID", `pad_token_id must be a non-negative integer, got ${describeValue(pad)}`, file, "pad_token_id");
  const layerNormEps = eps(file, c, "layer_norm_eps", 1e-12);
  return {
    architecture: arch, hiddenSize: H, numLayers: int(file, c, "num_hidden_layers", 1024), numHeads: nH, numKvHeads: nH, headDim: H / nH,
    intermediateSize: int(file, c, "intermediate_size", 1 << 18), vocabSize: int(file, c, "vocab_size", 1 << 22),
    rmsNormEps: layerNormEps, ropeTheta: 10000, tieWordEmbeddings: false, qkvBias: true, oBias: true, mlpBias: true,
    layerNormEps, maxPositions: int(file, c, "max_position_embeddings", 1 << 20, 512), typeVocabSize: int(file, c, "type_vocab_size", 1 << 16, 2),
    padTokenId: pad, numLabels, head: "seq-cls",
  };
}
