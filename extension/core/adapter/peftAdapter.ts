/**
 * PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors with PEFT's key names.
 * Reading validates every LoRA pair against the model (module exists, shapes match, rank agrees with the config).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, describeValue } from "../util/errors";
import { compileUntrustedPattern, untrustedPatternMatches } from "../util/safeRegex";
import { archModules, layerPrefix, layerWeightRe, modulePathInLayer, moduleDims } from "../models/arch";
import { readSafetensorsIndex, readTensorF32, TensorToWrite } from "../io/safetensors";
import { LoraDropRecord, bindSharedPairs, compactSharedKey, COMPACT_KEY_RE, layersFor, sharedParam, recordMetadata, RECORD_FILE } from "./dropRecord";
import { readRecord, checkRecordAgainstWeights } from "./recordFile";
import { Architecture, ModelConfig } from "../models/config";
import { readJsonFile } from "../io/jsonFile";
import { ownParam, type LoraModule } from "./loraModule";

/** The adapter_config.json fields the engine uses (others are kept verbatim in `raw`). */
export interface LoraConfig {
  r: number;
  loraAlpha: number;
  targetModules: string[] | string;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  layersToTransform?: number[];
  fanInFanOut: boolean;
  loraDropout: number;
  raw: Record<string, unknown>;
  /** The base model's architecture (set by loadAdapter; names the PEFT keys). Default llama. */
  architecture?: Architecture;
  /**
   * Non-LoRA tensors of the adapter file that writeAdapter copies over (as float32): a SEQ_CLS adapter's
   * classifier, saved through modules_to_save, so pruning never drops a trained head.
   */
  carry?: { file: string; names: string[] };
}

/** A loaded adapter. */
export interface Adapter {
  dir: string;
  config: LoraConfig;
  /** Target module names present, in decoder order. */
  modules: string[];
  /** All LoRA pairs, sorted by layer then module order. */
  loras: LoraModule[];
  /** The LoRA-drop record (lora_drop.json, the safetensors metadata, or an older adapter_config.json's `lora_drop`), when the adapter is a LoRA-drop adapter. */
  loraDrop?: LoraDropRecord;
  /** Base-model weight name → adapter tensor name, for the head weights the adapter replaces (modules_to_save). */
  head?: Map<string, string>;
}

/**
 * A head tensor saved through PEFT's modules_to_save. get_peft_model_state_dict strips "modules_to_save." and the
 * adapter name, so `classifier.modules_to_save.default.dense.weight` is stored as
 * `base_model.model.classifier.dense.weight` (peft/utils/save_and_load.py); the unstripped form is accepted too.
 */
const HEAD_KEY_RE = /^base_model\.model\.(classifier|score)\.(?:modules_to_save\.default\.)?([\w.]+)$/;

/** The PEFT key of a LoRA weight. */
export function peftKey(layer: number, module: string, which: "A" | "B", arch: Architecture = "llama"): string {
  return `base_model.model.${moduleName(layer, module, arch)}.lora_${which}.weight`;
}

/** The full module name PEFT matches patterns against. */
export function moduleName(layer: number, module: string, arch: Architecture = "llama"): string {
  return `${layerPrefix(arch, layer)}.${modulePathInLayer(arch, module)}`;
}

const KEY_RE = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/;

/** Splits a PEFT LoRA key into layer, module path inside the layer and A/B; undefined when it is not a layer's LoRA. */
function parseLoraKey(name: string, arch: Architecture): { layer: number; module: string; which: "A" | "B" } | undefined {
  const m = KEY_RE.exec(name);
  if (!m) return undefined;
  const l = layerWeightRe(arch).exec(m[1]!);
  if (!l) return undefined;
  let module = m[1]!.slice(l[0].length);
  // Llama ids are the bare projection name; the path's parent (self_attn/mlp) is checked against it below.
  if (arch === "llama" || arch === "mistral" || arch === "qwen2") {
    const p = /^(self_attn|mlp)\.(\w+)$/.exec(module);
    if (!p) return undefined;
    module = modulePathInLayer(arch, p[2]!) === module ? p[2]! : module;
  }
  return { layer: Number(l[1]), module, which: m[2] as "A" | "B" };
}

/** Parses adapter_config.json. */
export function parseLoraConfig(file: string, raw: unknown): LoraConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new LoraDropError("ADAPTER_INVALID", "adapter_config.json is not an object", file);
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== "LORA") throw new LoraDropError("ADAPTER_INVALID", `peft_type ${describeValue(c.peft_type)} is not LORA`, file, "peft_type");
  const r = c.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r <= 0 || r > 65536) throw new LoraDropError("ADAPTER_INVALID", `r must be a positive integer, got ${describeValue(r)}`, file, "r");
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw new LoraDropError("ADAPTER_INVALID", `lora_alpha must be a number, got ${describeValue(alpha)}`, file, "lora_alpha");
  const tm = c.target_modules;
  if (!(typeof tm === "string" || (Array.isArray(tm) && tm.every((t) => typeof t === "string")))) {
    throw new LoraDropError("ADAPTER_INVALID", "target_modules must be a list of names or a regular expression", file, "target_modules");
  }
  if (typeof tm === "string") compileUntrustedPattern(`^(?:${tm})$`, { code: "ADAPTER_INVALID", file, field: "target_modules" });
  // PEFT's flags are booleans: "false" or 0 would read as true in Python and as false here, so neither is guessed.
  const flag = (key: string): boolean => {
    const v = c[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== "boolean") throw new LoraDropError("ADAPTER_INVALID", `${key} must be true or false, got ${describeValue(v)}`, file, key);
    return v;
  };
  const [useRslora, useDora, fanInFanOut] = [flag("use_rslora"), flag("use_dora"), flag("fan_in_fan_out")];
  flag("inference_mode");
  // DoRA adds magnitude vectors this engine does not apply: profiling such an adapter would measure something else.
  if (useDora) throw new LoraDropError("ADAPTER_INVALID", "use_dora: DoRA adapters are not supported", file, "use_dora");
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) throw new LoraDropError("ADAPTER_INVALID", `lora_dropout must be a number in [0, 1), got ${describeValue(dropout)}`, file, "lora_dropout");
  const strings = (key: string) => {
    const v = c[key];
    if (v !== undefined && v !== null && !(typeof v === "string" || (Array.isArray(v) && v.every((x) => typeof x === "string")))) {
      throw new LoraDropError("ADAPTER_INVALID", `${key} must be a name, a list of names or null, got ${describeValue(v)}`, file, key);
    }
  };
  strings("layers_pattern");
  strings("modules_to_save");
  if (c.task_type !== undefined && c.task_type !== null && typeof c.task_type !== "string") throw new LoraDropError("ADAPTER_INVALID", `task_type must be a string, got ${describeValue(c.task_type)}`, file, "task_type");
  let layers: number[] | undefined;
  const ltt = c.layers_to_transform;
  if (typeof ltt === "number") layers = [ltt];
  else if (Array.isArray(ltt) && ltt.every((v) => Number.isInteger(v) && v >= 0)) layers = ltt as number[];
  else if (ltt !== undefined && ltt !== null) throw new LoraDropError("ADAPTER_INVALID", "layers_to_transform must be an integer or a list of integers", file, "layers_to_transform");
  if (c.bias !== undefined && c.bias !== "none") {
    throw new LoraDropError("ADAPTER_INVALID", `bias ${describeValue(c.bias)} is not supported (only "none": the adapter would change the base model's biases)`, file, "bias");
  }
  const patterns = (key: string): Record<string, number> => {
    const p = c[key] ?? {};
    const ok = key === "rank_pattern" ? (v: unknown) => Number.isInteger(v) && (v as number) > 0 : (v: unknown) => Number.isFinite(v);
    if (typeof p !== "object" || p === null || Array.isArray(p) || !Object.values(p).every(ok)) {
      throw new LoraDropError("ADAPTER_INVALID", `${key} must map module patterns to ${key === "rank_pattern" ? "positive integers" : "numbers"}`, file, key);
    }
    for (const k of Object.keys(p)) compileUntrustedPattern(`^(.*\\.)?${k}$`, { code: "ADAPTER_INVALID", file, field: key });
    return p as Record<string, number>;
  };
  return {
    r, loraAlpha: alpha, targetModules: tm as string[] | string,
    useRslora,
    rankPattern: patterns("rank_pattern"),
    alphaPattern: patterns("alpha_pattern"),
    layersToTransform: layers,
    fanInFanOut,
    loraDropout: dropout,
    raw: c,
  };
}

/** PEFT's pattern lookup: the first pattern key matching the end of the full module name. */
function lookupPattern(patterns: Record<string, number>, fullName: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) {
    if (untrustedPatternMatches(`^(.*\\.)?${key}$`, fullName, { code: "ADAPTER_INVALID", file: "adapter_config.json", field: "rank_pattern" })) return value;
  }
  return undefined;
}

/** Rank and scale of the LoRA on one module, as PEFT computes them. */
export function rankAndScale(cfg: LoraConfig, layer: number, module: string): { r: number; scale: number } {
  const full = moduleName(layer, module, cfg.architecture);
  const r = lookupPattern(cfg.rankPattern, full) ?? cfg.r;
  const alpha = lookupPattern(cfg.alphaPattern, full) ?? cfg.loraAlpha;
  return { r, scale: cfg.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** Whether adapter_config's target_modules selects this module (list: name match; string: full regex match). */
export function isTargeted(cfg: LoraConfig, layer: number, module: string): boolean {
  if (cfg.layersToTransform && !cfg.layersToTransform.includes(layer)) return false;
  const full = moduleName(layer, module, cfg.architecture);
  if (typeof cfg.targetModules === "string") {
    return untrustedPatternMatches(`^(?:${cfg.targetModules})$`, full, { code: "ADAPTER_INVALID", file: "adapter_config.json", field: "target_modules" });
  }
  return cfg.targetModules.some((t) => t === module || full === t || full.endsWith(`.${t}`));
}

/** Loads and validates a PEFT LoRA adapter folder against a model config. */
export function loadAdapter(dir: string, model: ModelConfig): Adapter {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LoraDropError("FILE_NOT_FOUND", "adapter folder not found", dir);
  const configFile = path.join(dir, "adapter_config.json");
  const config = { ...parseLoraConfig(configFile, readJsonFile(configFile)), architecture: model.architecture };
  const modulesOfArch = archModules(model.architecture);
  const weightsFile = path.join(dir, "adapter_model.safetensors");
  if (!fs.existsSync(weightsFile)) {
    const bin = path.join(dir, "adapter_model.bin");
    throw new LoraDropError("FILE_NOT_FOUND", fs.existsSync(bin)
      ? "adapter_model.safetensors not found (adapter_model.bin is a pickle file, which is not read for safety; convert it with PEFT's save_pretrained(safe_serialization=True))"
      : "adapter_model.safetensors not found", weightsFile);
  }
  const index = readSafetensorsIndex(weightsFile);
  const recordSource = readRecord(dir, config.raw, configFile, weightsFile, index.metadata);
  const loraDrop = recordSource?.record;
  const found = new Map<string, { A?: string; B?: string; layer: number; module: string }>();
  for (const name of index.tensors.keys()) {
    const m = parseLoraKey(name, model.architecture);
    if (!m) {
      // A LoRA tensor of a kind not read here (DoRA magnitudes, embedding or lm_head LoRA) must not be silently dropped.
      if (name.includes("lora_") && !COMPACT_KEY_RE.test(name)) throw new LoraDropError("ADAPTER_INVALID", `tensor ${name} is a LoRA weight this tool does not read (only decoder-layer lora_A/lora_B pairs)`, weightsFile, name);
      continue;
    }
    const { layer, module, which } = m;
    if (!modulesOfArch.includes(module)) {
      throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `tensor ${name} targets ${module}, which a ${model.architecture} layer does not have (${modulesOfArch.join(", ")})`, weightsFile, name);
    }
    if (layer >= model.numLayers) {
      throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `tensor ${name} is for layer ${layer} but the model has ${model.numLayers} layers`, weightsFile, name);
    }
    const k = `${layer}.${module}`;
    const e = found.get(k) ?? { layer, module };
    if (e[which]) throw new LoraDropError("ADAPTER_INVALID", `tensors ${e[which]} and ${name} are the same LoRA weight`, weightsFile, name);
    e[which] = name;
    found.set(k, e);
  }
  const own = [...found.values()].map(({ layer, module }) => ({ layer, module }));
  const compactModules = new Set<string>();
  // Compact LoRA-drop form: each shared layer reads the module's one stored pair (validated per layer below).
  for (const name of index.tensors.keys()) {
    const m = COMPACT_KEY_RE.exec(name);
    if (!m) continue;
    const module = m[1]!;
    if (!modulesOfArch.includes(module)) {
      throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `tensor ${name} is a compact shared LoRA of ${module}, which a ${model.architecture} layer does not have (${modulesOfArch.join(", ")})`, weightsFile, name);
    }
    if (!loraDrop) throw new LoraDropError("ADAPTER_INVALID", `tensor ${name} is a compact LoRA-drop tensor but the adapter has no lora_drop record (${RECORD_FILE})`, weightsFile, name);
    compactModules.add(module);
    const pair = (w: "A" | "B") => (index.tensors.has(compactSharedKey(module, w)) ? compactSharedKey(module, w) : undefined);
    for (const layer of layersFor(loraDrop.shared_layers, module)) {
      const own = found.get(`${layer}.${module}`);
      if (own && own.A !== pair("A")) throw new LoraDropError("ADAPTER_INVALID", `layer ${layer} ${module} has both its own LoRA and the compact shared one`, weightsFile, name);
      found.set(`${layer}.${module}`, { layer, module, A: pair("A"), B: pair("B") });
    }
  }
  if (recordSource) checkRecordAgainstWeights(recordSource, { own, compact: [...compactModules], numLayers: model.numLayers, modules: modulesOfArch });
  const head = new Map<string, string>();
  for (const name of index.tensors.keys()) {
    const h = HEAD_KEY_RE.exec(name);
    if (h && !name.includes("lora_")) head.set(`${h[1]}.${h[2]}`, name);
  }
  if (head.size) config.carry = { file: weightsFile, names: [...head.values()] };
  if (found.size === 0) throw new LoraDropError("ADAPTER_INVALID", "no LoRA weights with PEFT key names (…layers.N.self_attn.q_proj.lora_A.weight) found", weightsFile);
  const loras: LoraModule[] = [];
  for (const e of found.values()) {
    if (!e.A || !e.B) throw new LoraDropError("ADAPTER_INVALID", `layer ${e.layer} ${e.module} has lora_${e.A ? "A" : "B"} but no lora_${e.A ? "B" : "A"}`, weightsFile);
    if (!isTargeted(config, e.layer, e.module)) {
      throw new LoraDropError("ADAPTER_INVALID", `weights for layer ${e.layer} ${e.module} are present but adapter_config.json does not target it (target_modules, layers_to_transform)`, configFile, "target_modules");
    }
    const dims = moduleDims(model, e.module);
    const { r, scale } = rankAndScale(config, e.layer, e.module);
    const A = readTensorF32(index, e.A);
    const B = readTensorF32(index, e.B);
    const wantA = config.fanInFanOut ? [dims.in, r] : [r, dims.in];
    const wantB = config.fanInFanOut ? [r, dims.out] : [dims.out, r];
    const same = (s: number[], w: number[]) => s.length === w.length && s.every((d, i) => d === w[i]);
    if (!same(A.shape, [r, dims.in])) {
      throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `${e.A} has shape [${A.shape}], expected [${wantA}] (r=${r}, ${e.module} in_features=${dims.in})`, weightsFile, e.A);
    }
    if (!same(B.shape, [dims.out, r])) {
      throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `${e.B} has shape [${B.shape}], expected [${wantB}] (r=${r}, ${e.module} out_features=${dims.out})`, weightsFile, e.B);
    }
    loras.push({ layer: e.layer, module: e.module, r, scale, inFeatures: dims.in, outFeatures: dims.out, A: A.data, B: B.data, param: ownParam(e.layer, e.module) });
  }
  const order = (m: string) => modulesOfArch.indexOf(m);
  loras.sort((a, b) => a.layer - b.layer || order(a.module) - order(b.module));
  if (loraDrop?.mode === "share") bindSharedPairs(loraDrop, loras, weightsFile);
  const modules = [...new Set(loras.map((l) => l.module))].sort((a, b) => order(a) - order(b));
  return { dir, config, modules, loras, ...(loraDrop ? { loraDrop } : {}), ...(head.size ? { head } : {}) };
}

/** Options for writing an adapter folder. */
export interface WriteAdapterOptions {
  /** Replace an existing folder (only once the new one is complete). */
  force?: boolean;
  /** Extra adapter_config.json fields (merged over the source config's raw fields); only fields PEFT knows. */
  configOverrides?: Record<string, unknown>;
  /** The LoRA-drop record: written to lora_drop.json and, field by field, to the safetensors metadata. */
  record?: LoraDropRecord;
  /** "compact": pairs bound to a `shared.{module}` param are stored once under the LoRA-drop compact keys. */
  format?: "peft" | "compact";
  /** Called with the complete temporary folder before it is renamed into place (e.g. to verify it); throw to abandon the write. */
  beforeCommit?: (tmpDir: string) => void | Promise<void>;
  /** Trained classification-head tensors (modules_to_save), by adapter key; they replace carried tensors of the same key. */
  head?: { name: string; shape: number[]; data: Float32Array }[];
}

/**
 * Writes a standard PEFT adapter folder (adapter_config.json + adapter_model.safetensors) atomically: the folder
 * appears complete or not at all. Every module's pair is written under its own PEFT key, so a shared LoRA is
 * written once per layer that uses it, which every PEFT loader reads as it is.
 */
export async function writeAdapter(dir: string, config: LoraConfig, loras: LoraModule[], opts: WriteAdapterOptions = {}): Promise<void> {
  const { writeDirAtomic } = await import("../io/atomicWrite");
  const { encodeSafetensors, readSafetensorsIndex: readIndex, readTensorBytes, toFloat32 } = await import("../io/safetensors");
  const written = new Set<string>();
  const tensors: TensorToWrite[] = loras.flatMap((l): TensorToWrite[] => {
    const compact = opts.format === "compact" && l.param === sharedParam(l.module);
    if (compact && written.has(l.param)) return [];
    written.add(l.param);
    return [
      { name: compact ? compactSharedKey(l.module, "A") : peftKey(l.layer, l.module, "A", config.architecture), dtype: "F32" as const, shape: [l.r, l.inFeatures], data: l.A },
      { name: compact ? compactSharedKey(l.module, "B") : peftKey(l.layer, l.module, "B", config.architecture), dtype: "F32" as const, shape: [l.outFeatures, l.r], data: l.B },
    ];
  });
  // A carried head tensor is dropped when a trained one replaces it, whichever of PEFT's two key forms it has.
  const headBase = (key: string) => { const h = HEAD_KEY_RE.exec(key); return h ? `${h[1]}.${h[2]}` : key; };
  const trainedHead = new Set((opts.head ?? []).map((h) => headBase(h.name)));
  for (const h of opts.head ?? []) tensors.push({ name: h.name, dtype: "F32" as const, shape: h.shape, data: h.data });
  if (config.carry) {
    const src = readIndex(config.carry.file);
    for (const name of config.carry.names.filter((n) => !trainedHead.has(headBase(n)))) {
      const e = src.tensors.get(name);
      if (!e) throw new LoraDropError("TENSOR_MISSING", `tensor ${name} to carry over is missing`, config.carry.file, name);
      // Kept in its own dtype: F16/BF16 → float32 → F16/BF16 gives back the same bits.
      const dtype = e.dtype === "F16" || e.dtype === "BF16" ? e.dtype : "F32" as const;
      tensors.push({ name, dtype, shape: e.shape, data: toFloat32(readTensorBytes(src, name), e.dtype, config.carry.file, name) });
    }
  }
  // adapter_config.json keeps to PEFT's fields: an older adapter's `lora_drop` key moves to lora_drop.json.
  const { lora_drop: _legacy, ...json } = { ...config.raw, ...(opts.configOverrides ?? {}) };
  await writeDirAtomic(dir, async (tmp) => {
    fs.writeFileSync(path.join(tmp, "adapter_config.json"), JSON.stringify(json, null, 2) + "\n");
    if (opts.record) fs.writeFileSync(path.join(tmp, RECORD_FILE), JSON.stringify(opts.record, null, 2) + "\n");
    fs.writeFileSync(path.join(tmp, "adapter_model.safetensors"), encodeSafetensors(tensors, { format: "pt", ...(opts.record ? recordMetadata(opts.record) : {}) }));
    await opts.beforeCommit?.(tmp);
  }, opts.force);
}
