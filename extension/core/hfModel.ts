/**
 * A base model folder in Hugging Face layout: config.json, model.safetensors (or shards with
 * model.safetensors.index.json) and optionally tokenizer.json. Only headers are read here; weights stay on disk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, describeValue } from "./errors";
import { readSafetensorsIndex, SafetensorsIndex, TensorEntry } from "./safetensors";
import { archModuleDims, archModules, layerWeightRe, parseNonLlamaConfig } from "./models/arch";

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
}

/** Where one weight lives. */
export interface WeightRef {
  index: SafetensorsIndex;
  entry: TensorEntry;
}

/** A loaded model folder: config, weight locations and tokenizer files. */
export interface HfModel {
  dir: string;
  configFile: string;
  config: ModelConfig;
  weights: Map<string, WeightRef>;
  shards: SafetensorsIndex[];
  tokenizerFile?: string;
  tokenizerConfigFile?: string;
}

/** Largest JSON configuration file read (config.json, adapter_config.json, the shard index). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

function readJson(file: string): unknown {
  let text: string;
  try {
    // Checked before reading so that a multi-gigabyte file in the place of a config costs nothing.
    const size = fs.statSync(file).size;
    if (size > MAX_JSON_BYTES) throw new LoraDropError("CONFIG_INVALID", `file is ${size} bytes, more than the ${MAX_JSON_BYTES}-byte limit for a JSON configuration file`, file);
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof LoraDropError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoraDropError(code === "ENOENT" ? "FILE_NOT_FOUND" : "FILE_UNREADABLE", code === "ENOENT" ? "file not found" : `cannot read (${code})`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LoraDropError("CONFIG_INVALID", `not valid JSON (${(e as Error).message})`, file);
  }
}

/** Reads a JSON file, with errors that name it. */
export const readJsonFile = readJson;

function positiveInt(file: string, raw: Record<string, unknown>, key: string, max: number, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > max) {
    throw new LoraDropError("CONFIG_INVALID", `${key} must be a positive integer up to ${max}, got ${describeValue(v)}`, file, key);
  }
  return v;
}

/** Parses and validates config.json. */
export function parseModelConfig(file: string, raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new LoraDropError("CONFIG_INVALID", "config.json is not a JSON object", file);
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (typeof modelType !== "string" || !(SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE",
      `model_type ${describeValue(modelType)} is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`, file, "model_type");
  }
  if (modelType === "gpt2" || modelType === "roberta" || modelType === "bert") return parseNonLlamaConfig(file, c, modelType);
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
  const theta = c.rope_theta ?? 10000;
  if (typeof theta !== "number" || !(theta > 1) || !Number.isFinite(theta)) throw new LoraDropError("CONFIG_INVALID", `rope_theta must be > 1, got ${describeValue(theta)}`, file, "rope_theta");
  const attentionBias = c.attention_bias === true;
  return {
    architecture: modelType as Architecture,
    hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize, vocabSize,
    rmsNormEps: eps, ropeTheta: theta,
    ropeScaling: parseRopeScaling(file, c.rope_scaling),
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: attentionBias,
    mlpBias: c.mlp_bias === true,
  };
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

/** Opens a model folder: validates config.json and indexes the weights (headers only). */
export function loadHfModel(dir: string): HfModel {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LoraDropError("FILE_NOT_FOUND", "model folder not found", dir);
  const configFile = path.join(dir, "config.json");
  const config = parseModelConfig(configFile, readJson(configFile));
  const { files: shardFiles, indexFile, weightMap } = findShards(dir);
  const shards = shardFiles.map((f) => readSafetensorsIndex(f));
  const weights = new Map<string, WeightRef>();
  for (const index of shards) {
    for (const entry of index.tensors.values()) {
      if (weights.has(entry.name)) throw new LoraDropError("SAFETENSORS_DUPLICATE", `tensor ${entry.name} appears in two shards`, index.file, entry.name);
      weights.set(entry.name, { index, entry });
    }
  }
  // Decoder-layer weights must cover exactly the layers config.json declares: a config from another checkpoint
  // would otherwise profile some layers and silently report the others as unimportant.
  const layersSeen = new Set<number>();
  for (const name of weights.keys()) {
    const m = layerWeightRe(config.architecture).exec(name);
    if (m) layersSeen.add(Number(m[1]));
  }
  if (layersSeen.size > 0) {
    for (const l of layersSeen) {
      if (l >= config.numLayers) throw new LoraDropError("CONFIG_INVALID", `num_hidden_layers is ${config.numLayers} but the weights hold layer ${l}`, configFile, "num_hidden_layers");
    }
    for (let l = 0; l < config.numLayers; l++) {
      if (!layersSeen.has(l)) throw new LoraDropError("TENSOR_MISSING", `no weights for layer ${l}, but num_hidden_layers is ${config.numLayers}`, dir, `model.layers.${l}`);
    }
  }
  // The index must describe the shards truthfully: a weight it places in a shard that lacks it means a mixed-up
  // or half-downloaded checkpoint.
  if (indexFile && weightMap) {
    for (const [name, shard] of Object.entries(weightMap)) {
      const ref = weights.get(name);
      if (!ref || path.basename(ref.index.file) !== shard) {
        throw new LoraDropError("TENSOR_MISSING", `weight_map places ${describeValue(name)} in ${shard}, which does not hold it`, indexFile, "weight_map");
      }
    }
  }
  const tok = path.join(dir, "tokenizer.json");
  const tokCfg = path.join(dir, "tokenizer_config.json");
  return {
    dir, configFile, config, weights, shards,
    tokenizerFile: fs.existsSync(tok) ? tok : undefined,
    tokenizerConfigFile: fs.existsSync(tokCfg) ? tokCfg : undefined,
  };
}

function findShards(dir: string): { files: string[]; indexFile?: string; weightMap?: Record<string, string> } {
  const indexFile = path.join(dir, "model.safetensors.index.json");
  if (fs.existsSync(indexFile)) {
    const idx = readJson(indexFile) as { weight_map?: unknown } | null;
    const wm = typeof idx === "object" && idx !== null && !Array.isArray(idx) ? idx.weight_map : undefined;
    if (typeof wm !== "object" || wm === null || Array.isArray(wm)) throw new LoraDropError("CONFIG_INVALID", "weight_map is missing or not an object", indexFile, "weight_map");
    const entries = Object.entries(wm as Record<string, unknown>);
    if (entries.length === 0) throw new LoraDropError("CONFIG_INVALID", "weight_map is empty", indexFile, "weight_map");
    for (const [name, f] of entries) {
      if (typeof f !== "string" || f === "" || f.includes("/") || f.includes("\\") || f.startsWith(".")) {
        throw new LoraDropError("CONFIG_INVALID", `weight_map gives ${describeValue(name)} an invalid shard ${describeValue(f)}`, indexFile, "weight_map");
      }
    }
    const weightMap = wm as Record<string, string>;
    const files = [...new Set(Object.values(weightMap))].sort();
    return { files: files.map((f) => path.join(dir, f)), indexFile, weightMap };
  }
  const single = path.join(dir, "model.safetensors");
  if (fs.existsSync(single)) return { files: [single] };
  throw new LoraDropError("FILE_NOT_FOUND", "no model.safetensors or model.safetensors.index.json in the model folder", dir);
}

/** Input and output features of a target module in a decoder layer. */
export function moduleDims(cfg: ModelConfig, module: string): { in: number; out: number } {
  if (!archModules(cfg.architecture).includes(module) && cfg.architecture !== "llama" && cfg.architecture !== "mistral" && cfg.architecture !== "qwen2") {
    throw new LoraDropError("ADAPTER_INVALID", `module ${module} is not a linear layer of a ${cfg.architecture} layer (${archModules(cfg.architecture).join(", ")})`);
  }
  const other = archModuleDims(cfg, module);
  if (other) return other;
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  switch (module) {
    case "q_proj": return { in: cfg.hiddenSize, out: q };
    case "k_proj": case "v_proj": return { in: cfg.hiddenSize, out: kv };
    case "o_proj": return { in: q, out: cfg.hiddenSize };
    case "gate_proj": case "up_proj": return { in: cfg.hiddenSize, out: cfg.intermediateSize };
    case "down_proj": return { in: cfg.intermediateSize, out: cfg.hiddenSize };
    default: throw new LoraDropError("ADAPTER_INVALID", `module ${module} is not a linear layer of a ${cfg.architecture} decoder layer`);
  }
}

/** The LoRA-targetable linear modules of a decoder layer, in forward order. */
export const DECODER_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** The parent submodule ("self_attn" or "mlp") of a target module. */
export function moduleParent(module: string): "self_attn" | "mlp" {
  return module.endsWith("_proj") && ["gate_proj", "up_proj", "down_proj"].includes(module) ? "mlp" : "self_attn";
}
