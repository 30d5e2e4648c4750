/**
 * config.json of RoBERTa and BERT sequence classifiers (or bare encoders whose adapter saves the classifier): sizes,
 * exact GELU, absolute positions, token types, padding id and the number of labels.
 */
import { LoraDropError, describeValue } from "../util/errors";
import { activation, epsilon, optionalBool, positiveInt, requireFlag, type ModelConfig } from "./config";

/** The activations the encoder's feed-forward implements. */
export const ENCODER_ACTIVATIONS = ["gelu"] as const;

/** Sequence-classification heads the engine builds, by `architectures[0]` of config.json. */
export const SUPPORTED_HEADS = ["RobertaForSequenceClassification", "BertForSequenceClassification"] as const;
/**
 * Encoder checkpoints without a classification head that are accepted as the base of a PEFT SEQ_CLS adapter: the
 * adapter's modules_to_save brings the classifier (see adapter/adapterHead.ts); profiling needs none.
 */
export const HEADLESS_ENCODERS = ["RobertaForMaskedLM", "RobertaModel", "BertForMaskedLM", "BertModel", "BertForPreTraining"] as const;

/** Parses a roberta or bert config.json into the engine's config. */
export function parseEncoderConfig(file: string, c: Record<string, unknown>, arch: "roberta" | "bert"): ModelConfig {
  const H = positiveInt(file, c, "hidden_size", 1 << 16);
  const nH = positiveInt(file, c, "num_attention_heads", 1024);
  if (H % nH !== 0) throw new LoraDropError("CONFIG_INVALID", `hidden_size (${H}) is not divisible by num_attention_heads (${nH})`, file, "hidden_size");
  activation(file, c, "hidden_act", ENCODER_ACTIVATIONS, "gelu", arch);
  requireFlag(file, c, "is_decoder", false, false, "the graph is a bidirectional encoder");
  requireFlag(file, c, "add_cross_attention", false, false, "the graph has no cross-attention");
  optionalBool(file, c, "tie_word_embeddings", true);
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
  const numLabels = id2label && typeof id2label === "object" && !Array.isArray(id2label) ? Object.keys(id2label).length : positiveInt(file, c, "num_labels", 1 << 16, 2);
  if (numLabels < 1) throw new LoraDropError("CONFIG_INVALID", "id2label is empty", file, "id2label");
  const pad = c.pad_token_id ?? (arch === "roberta" ? 1 : 0);
  if (typeof pad !== "number" || !Number.isInteger(pad) || pad < 0) throw new LoraDropError("CONFIG_INVALID", `pad_token_id must be a non-negative integer, got ${describeValue(pad)}`, file, "pad_token_id");
  const layerNormEps = epsilon(file, c, "layer_norm_eps", 1e-12);
  return {
    architecture: arch, hiddenSize: H, numLayers: positiveInt(file, c, "num_hidden_layers", 1024), numHeads: nH, numKvHeads: nH, headDim: H / nH,
    intermediateSize: positiveInt(file, c, "intermediate_size", 1 << 18), vocabSize: positiveInt(file, c, "vocab_size", 1 << 22),
    rmsNormEps: layerNormEps, ropeTheta: 10000, tieWordEmbeddings: false, qkvBias: true, oBias: true, mlpBias: true,
    layerNormEps, maxPositions: positiveInt(file, c, "max_position_embeddings", 1 << 20, 512), typeVocabSize: positiveInt(file, c, "type_vocab_size", 1 << 16, 2),
    padTokenId: pad, numLabels, head: "seq-cls",
  };
}
