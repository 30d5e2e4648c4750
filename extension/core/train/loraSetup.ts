/**
 * The LoRA layout a training run optimises: which modules carry a LoRA, which parameter pair each is bound to
 * (own `L{layer}.{module}`, or `shared.{module}` for LoRA-drop's share set), their initial values, and the
 * adapter_config.json the result is written with.
 */
import * as path from "node:path";
import { meanLowRank } from "../prune/lowRank";
import { archModules, defaultTargets, isEncoder, targetMatches, moduleDims } from "../models/arch";
import { Adapter, LoraConfig, rankAndScale, isTargeted, parseLoraConfig, loadAdapter } from "../adapter/peftAdapter";
import { LoraDropError } from "../util/errors";
import { sharedParam, type LoraDropRecord } from "../adapter/dropRecord";
import { Rng } from "../util/random";
import { LoraParam } from "../runtime/lossSession";
import { ModelConfig } from "../models/config";
import type { HfModel } from "../models/hfModel";
import type { Logger } from "../util/progress";
import { LoraModule, ownParam } from "../adapter/loraModule";

/** Modules and their parameter pairs. */
export interface LoraLayout {
  config: LoraConfig;
  /** One entry per (layer, module); modules bound to one param share its A/B arrays. */
  modules: LoraModule[];
  /** The distinct parameter pairs, in first-use order. */
  params: Map<string, LoraParam>;
  /** The initial adapter's LoRA-drop record, carried over when the run keeps its structure. */
  record?: LoraDropRecord;
}

/** Options of a fresh LoRA. */
export interface NewLoraOptions {
  r: number;
  loraAlpha: number;
  targets: string[];
  useRslora: boolean;
  loraDropout: number;
  /** Recorded as base_model_name_or_path. */
  baseModel: string;
}

/** LoRA-drop's share set: these layers (per module when a record) use one shared pair per module. */
export type SharedLayers = number[] | Record<string, number[]>;

function isShared(shared: SharedLayers | undefined, layer: number, module: string): boolean {
  if (!shared) return false;
  return Array.isArray(shared) ? shared.includes(layer) : (shared[module]?.includes(layer) ?? false);
}

/** Checks a share set against the model: layer indices in range, module names known. */
export function validateShared(shared: SharedLayers | undefined, cfg: ModelConfig): void {
  if (!shared) return;
  const lists = Array.isArray(shared) ? { all: shared } : shared;
  for (const [module, layers] of Object.entries(lists)) {
    if (module !== "all" && !archModules(cfg.architecture).includes(module)) {
      throw new LoraDropError("INVALID_ARGUMENT", `sharedLayers names ${module}, which is not a ${cfg.architecture} module (${archModules(cfg.architecture).join(", ")})`, undefined, "sharedLayers");
    }
    for (const l of layers) {
      if (!Number.isInteger(l) || l < 0 || l >= cfg.numLayers) {
        throw new LoraDropError("INVALID_ARGUMENT", `sharedLayers has layer ${l}; the model has layers 0–${cfg.numLayers - 1}`, undefined, "sharedLayers");
      }
    }
  }
}

/** A fresh LoRA as PEFT initialises it: A Kaiming-uniform (a = √5, i.e. U(±1/√in)), B zeros; one draw per distinct param. */
export function newLoraLayout(cfg: ModelConfig, o: NewLoraOptions, shared: SharedLayers | undefined, rng: Rng): LoraLayout {
  for (const t of o.targets) {
    if (!targetMatches(cfg.architecture, t)) {
      throw new LoraDropError("INVALID_ARGUMENT", `target module ${t} is not one of ${archModules(cfg.architecture).join(", ")}`, undefined, "targets");
    }
  }
  if (!Number.isInteger(o.r) || o.r <= 0) throw new LoraDropError("INVALID_ARGUMENT", `r must be a positive integer, got ${o.r}`, undefined, "r");
  validateShared(shared, cfg);
  const raw: Record<string, unknown> = {
    peft_type: "LORA",
    task_type: isEncoder(cfg.architecture) ? "SEQ_CLS" : "CAUSAL_LM",
    base_model_name_or_path: o.baseModel,
    r: o.r,
    lora_alpha: o.loraAlpha,
    lora_dropout: o.loraDropout,
    target_modules: archModules(cfg.architecture).filter((m) => o.targets.includes(m)).concat(o.targets.filter((t) => !archModules(cfg.architecture).includes(t))),
    bias: "none",
    // GPT-2's Conv1D stores its weight [in, out]; PEFT marks that with fan_in_fan_out (lora_A/B keep [r, in]/[out, r]).
    fan_in_fan_out: cfg.architecture === "gpt2",
    use_rslora: o.useRslora,
    use_dora: false,
    init_lora_weights: true,
    rank_pattern: {},
    alpha_pattern: {},
    layers_to_transform: null,
    layers_pattern: null,
    modules_to_save: null,
    inference_mode: true,
    revision: null,
  };
  const config = { ...parseLoraConfig("adapter_config.json", raw), architecture: cfg.architecture };
  const modules: LoraModule[] = [];
  const params = new Map<string, LoraParam>();
  for (let layer = 0; layer < cfg.numLayers; layer++) {
    for (const module of archModules(cfg.architecture)) {
      if (!isTargeted(config, layer, module)) continue;
      const { r, scale } = rankAndScale(config, layer, module);
      const d = moduleDims(cfg, module);
      const name = isShared(shared, layer, module) ? sharedParam(module) : ownParam(layer, module);
      let p = params.get(name);
      if (!p) {
        const bound = 1 / Math.sqrt(d.in);
        const A = new Float32Array(r * d.in);
        for (let i = 0; i < A.length; i++) A[i] = rng.uniform(-bound, bound);
        p = { name, r, inFeatures: d.in, outFeatures: d.out, A, B: new Float32Array(d.out * r) };
        params.set(name, p);
      }
      modules.push({ layer, module, r, scale, inFeatures: d.in, outFeatures: d.out, A: p.A, B: p.B, param: name });
    }
  }
  return { config, modules, params };
}

/**
 * The layout of an existing adapter (its structure and values). Without a share set, the adapter's own binding is
 * kept (a LoRA-drop adapter's shared layers are already bound to one pair by loadAdapter). With one, each shared
 * pair starts as prune's does (see sharedStart).
 */
export function layoutFromAdapter(adapter: Adapter, cfg: ModelConfig, shared: SharedLayers | undefined, loraDropout?: number): LoraLayout {
  validateShared(shared, cfg);
  const raw = { ...adapter.config.raw, ...(loraDropout !== undefined ? { lora_dropout: loraDropout } : {}) };
  // The head an adapter saved (modules_to_save) is not trained here and is carried over into the output unchanged.
  const config = { ...parseLoraConfig(path.join(adapter.dir, "adapter_config.json"), raw), architecture: adapter.config.architecture, carry: adapter.config.carry };
  const params = new Map<string, LoraParam>();
  const members = new Map<string, LoraModule[]>();
  const modules = adapter.loras.map((l) => {
    const name = !shared ? l.param : isShared(shared, l.layer, l.module) ? sharedParam(l.module) : ownParam(l.layer, l.module);
    members.set(name, [...(members.get(name) ?? []), l]);
    return { ...l, param: name };
  });
  for (const [name, group] of members) {
    const first = group[0]!;
    if (group.some((l) => l.r !== first.r)) {
      throw new LoraDropError("ADAPTER_INVALID", `the shared ${first.module} pair would join layers of different ranks`, adapter.dir, "r");
    }
    const { A, B } = sharedStart(group);
    params.set(name, { name, r: first.r, inFeatures: first.inFeatures, outFeatures: first.outFeatures, A, B });
  }
  for (const m of modules) {
    const p = params.get(m.param)!;
    m.A = p.A;
    m.B = p.B;
  }
  return { config, modules, params, ...(adapter.loraDrop && !shared ? { record: adapter.loraDrop } : {}) };
}

/**
 * The starting value of a pair shared by several layers: their common value when they are equal; else, as prune
 * does, the best rank-r approximation of the mean of their updates s·B·A (the mean of the factors is not the mean of
 * the products); and where that mean is zero (untrained pairs, B = 0), the element-wise mean, which keeps A's random
 * start so the pair can still learn.
 */
function sharedStart(group: LoraModule[]): { A: Float32Array; B: Float32Array } {
  const first = group[0]!;
  const same = (x: Float32Array, y: Float32Array) => x.length === y.length && x.every((v, i) => v === y[i]);
  if (group.every((l) => same(l.A, first.A) && same(l.B, first.B))) return { A: first.A, B: first.B };
  const low = meanLowRank(group, first.r, first.scale);
  if (low.singularValues.some((s) => s > 0)) return { A: low.A, B: low.B };
  const A = new Float32Array(first.A.length);
  const B = new Float32Array(first.B.length);
  for (const l of group) {
    for (let i = 0; i < A.length; i++) A[i] = A[i]! + l.A[i]! / group.length;
    for (let i = 0; i < B.length; i++) B[i] = B[i]! + l.B[i]! / group.length;
  }
  return { A, B };
}

/** What a training run says about its LoRA structure (TrainOptions' fields). */
export interface RunStructure {
  modelDir: string;
  /** Start from this adapter's structure and values; the fields below are then ignored (with a warning). */
  initAdapterDir?: string;
  r?: number; loraAlpha?: number; targets?: string[]; useRslora?: boolean; loraDropout?: number;
  sharedLayers?: SharedLayers;
}

/** The LoRA layout of a run: from its initial adapter, or fresh (r, lora alpha and targets from the resolved settings). */
export function layoutForRun(model: HfModel, o: RunStructure, s: { r: number; loraAlpha: number; targets: string[]; seed: number }, log?: Logger): LoraLayout {
  if (o.initAdapterDir) {
    const given = (["r", "loraAlpha", "targets", "useRslora"] as const).filter((k) => o[k] !== undefined);
    if (given.length) log?.warn(`${given.join(", ")} ignored: the LoRA structure comes from ${o.initAdapterDir}`);
    return layoutFromAdapter(loadAdapter(o.initAdapterDir, model.config), model.config, o.sharedLayers, o.loraDropout);
  }
  return newLoraLayout(model.config, {
    r: s.r, loraAlpha: s.loraAlpha, targets: o.targets ?? defaultTargets(model.config.architecture, s.targets), useRslora: o.useRslora ?? false,
    loraDropout: o.loraDropout ?? 0, baseModel: path.resolve(o.modelDir),
  }, o.sharedLayers, new Rng(s.seed));
}
