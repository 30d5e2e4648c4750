/**
 * A base model folder in Hugging Face layout: config.json, model.safetensors (or shards with
 * model.safetensors.index.json) and optionally tokenizer.json. Only headers are read here; weights stay on disk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, describeValue } from "../util/errors";
import { readSafetensorsIndex, SafetensorsIndex, TensorEntry } from "../io/safetensors";
import { readJsonFile } from "../io/jsonFile";
import { layerWeightRe } from "./arch";
import { SUPPORTED_ARCHITECTURES, type Architecture, type ModelConfig } from "./config";
import { parseLlamaConfig } from "./llamaConfig";
import { parseGpt2Config } from "./gpt2Config";
import { parseEncoderConfig } from "./encoderConfig";

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

/** Parses and validates config.json, with the parser of its model_type. */
export function parseModelConfig(file: string, raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new LoraDropError("CONFIG_INVALID", "config.json is not a JSON object", file);
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (typeof modelType !== "string" || !(SUPPORTED_ARCHITECTURES as readonly string[]).includes(modelType)) {
    throw new LoraDropError("UNSUPPORTED_ARCHITECTURE",
      `model_type ${describeValue(modelType)} is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`, file, "model_type");
  }
  const arch = modelType as Architecture;
  if (arch === "gpt2") return parseGpt2Config(file, c);
  if (arch === "roberta" || arch === "bert") return parseEncoderConfig(file, c, arch);
  return parseLlamaConfig(file, c, arch);
}

/** Opens a model folder: validates config.json and indexes the weights (headers only). */
export function loadHfModel(dir: string): HfModel {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LoraDropError("FILE_NOT_FOUND", "model folder not found", dir);
  const configFile = path.join(dir, "config.json");
  const config = parseModelConfig(configFile, readJsonFile(configFile));
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
    const idx = readJsonFile(indexFile) as { weight_map?: unknown } | null;
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
