/**
 * What every criterion shares: loading the model, the adapter and the examples a profile runs over, and turning
 * raw per-module importance into the profile file (normalised importance, settings, sequences, timing), after
 * refusing non-finite values.
 */
import * as path from "node:path";
import { loadHfModel, type HfModel } from "../models/hfModel";
import { loadAdapter, peftKey, type Adapter } from "../adapter/peftAdapter";
import type { TokenizedExample } from "../data/dataset";
import { loadExamples } from "../data/examples";
import { LoraDropError } from "../util/errors";
import { normalise } from "./selection";
import { PROFILE_DEFAULTS, type ProfileOptions } from "./options";
import { PROFILE_SCHEMA, PROFILE_VERSION, type Criterion, type ProfileFile } from "./profileSchema";
import type { EngineChoice } from "../torch/engineChoice";

/** The model, adapter and examples of a profile run. */
export interface ProfileInputs {
  model: HfModel;
  adapter: Adapter;
  examples: TokenizedExample[];
}

/** Loads what a profile runs over; `withModel` may replace the model once the adapter is known (a classifier's saved head). */
export function loadProfileInputs(opts: ProfileOptions, withModel: (model: HfModel, adapter: Adapter) => HfModel = (m) => m): ProfileInputs {
  const base = loadHfModel(opts.modelDir);
  const adapter = loadAdapter(opts.adapterDir, base.config);
  const model = withModel(base, adapter);
  const examples = loadExamples(model, opts.dataPath, opts.maxExamples ?? PROFILE_DEFAULTS.maxExamples, opts.maxTokens ?? PROFILE_DEFAULTS.maxTokens);
  return { model, adapter, examples };
}

/**
 * Normalised importance from raw values: I_i = max(g_i, 0) / Σ max(g, 0). Every criterion but ablation is never
 * negative, so this is plain normalisation for them; a negative ablation value (removing the layer's LoRA lowered the
 * loss) counts as no importance at all, so that layer is among the first to be shared.
 */
export function normaliseImportance(raw: readonly number[]): number[] {
  return normalise(raw.map((g) => Math.max(g, 0)));
}

/** A zero per-module, per-layer table for the adapter's modules. */
export function zeroTable(modules: string[], numLayers: number): Record<string, number[]> {
  const table: Record<string, number[]> = {};
  for (const m of modules) table[m] = new Array(numLayers).fill(0);
  return table;
}

/** Number of LoRA parameters per module and layer, for the profile file. */
export function paramsTable(adapter: Adapter, numLayers: number): Record<string, number[]> {
  const table: Record<string, number[]> = {};
  for (const m of adapter.modules) table[m] = new Array(numLayers).fill(0);
  for (const l of adapter.loras) table[l.module]![l.layer] = l.r * (l.inFeatures + l.outFeatures);
  return table;
}

/** What a criterion measured, to be written as a profile file. */
export interface MeasuredImportance {
  opts: ProfileOptions;
  model: HfModel;
  adapter: Adapter;
  examples: TokenizedExample[];
  criterion: Criterion;
  /** The engine that measured (default onnx). */
  engine?: EngineChoice;
  device: string;
  /** Raw importance per module and layer. */
  perModuleRaw: Record<string, number[]>;
  /** Raw importance per layer when it is not the sum over modules (ablation removes a whole layer's LoRA at once). */
  perLayerRaw?: number[];
  /** What an ablation profile records besides the importance. */
  ablation?: ProfileFile["ablation"];
  /** Per-token norms, for the output criterion. */
  norms?: Record<string, number[][][]>;
  /** Date.now() when the run started. */
  started: number;
  peakRss?: number;
}

/** Builds the profile file from what a criterion measured: normalised importance, settings, sequences, timing. */
export function assembleProfile(m: MeasuredImportance): ProfileFile {
  const L = m.model.config.numLayers;
  const modules = m.adapter.modules;
  const perLayerRaw = m.perLayerRaw ?? Array.from({ length: L }, (_, i) => modules.reduce((a, mod) => a + m.perModuleRaw[mod]![i]!, 0));
  const perModule: Record<string, number[]> = {};
  for (const mod of modules) perModule[mod] = normaliseImportance(m.perModuleRaw[mod]!);
  const seconds = (Date.now() - m.started) / 1000;
  const tokens = m.examples.reduce((a, e) => a + e.ids.length, 0);
  const cfg = m.model.config;
  return {
    schema: PROFILE_SCHEMA,
    version: PROFILE_VERSION,
    created: new Date().toISOString(),
    criterion: m.criterion,
    device: m.device,
    engine: m.engine ?? "onnx",
    // The torch engine's precision is its dtype, part of `device`.
    ...(m.engine === "torch" ? {} : { precision: m.opts.precision ?? "fp32" }),
    model: { path: path.resolve(m.opts.modelDir), architecture: cfg.architecture, num_layers: L, hidden_size: cfg.hiddenSize, vocab_size: cfg.vocabSize },
    adapter: {
      path: path.resolve(m.opts.adapterDir), r: m.adapter.config.r, lora_alpha: m.adapter.config.loraAlpha, target_modules: modules,
      params: paramsTable(m.adapter, L), total_params: m.adapter.loras.reduce((a, l) => a + l.r * (l.inFeatures + l.outFeatures), 0),
    },
    settings: { data: path.resolve(m.opts.dataPath), max_examples: m.opts.maxExamples ?? PROFILE_DEFAULTS.maxExamples, max_tokens: m.opts.maxTokens ?? PROFILE_DEFAULTS.maxTokens },
    layers: Array.from({ length: L }, (_, i) => i),
    modules,
    sequences: m.examples.map((e) => ({ ids: e.ids, tokens: e.tokens, special: e.special, example: e.example })),
    ...(m.norms ? { norms: m.norms } : {}),
    importance: { per_layer_raw: perLayerRaw, per_layer: normaliseImportance(perLayerRaw), per_module_raw: m.perModuleRaw, per_module: perModule },
    ...(m.ablation ? { ablation: m.ablation } : {}),
    timing: { seconds, tokens, tokens_per_second: tokens / Math.max(seconds, 1e-9), ...(m.peakRss !== undefined ? { peak_rss_bytes: m.peakRss } : {}) },
  };
}

/**
 * Refuses a profile whose norms are not finite: NaN or Inf would otherwise be written as null and rank layers
 * arbitrarily. A non-finite LoRA output spreads to every later layer, so the error names the cause: the first
 * adapter tensor holding NaN/Inf if there is one, else the first layer and module (in forward order) that went bad.
 */
export function assertFiniteNorms(perModuleRaw: Record<string, number[]>, adapter: Adapter, adapterDir: string, modelDir: string): void {
  const bad = adapter.modules.flatMap((m) => perModuleRaw[m]!.map((g, layer) => ({ m, layer, g }))).filter((x) => !Number.isFinite(x.g));
  if (bad.length === 0) return;
  for (const l of adapter.loras) {
    const which = !l.A.every(Number.isFinite) ? "A" : !l.B.every(Number.isFinite) ? "B" : undefined;
    if (which) {
      throw new LoraDropError("NUMERICAL", `the LoRA outputs are not finite from layer ${l.layer} ${l.module} on: its lora_${which} weights contain NaN or Inf`,
        path.join(adapterDir, "adapter_model.safetensors"), peftKey(l.layer, l.module, which, adapter.config.architecture));
    }
  }
  const order = (m: string) => adapter.modules.indexOf(m);
  const first = bad.sort((a, b) => a.layer - b.layer || order(a.m) - order(b.m))[0]!;
  throw new LoraDropError("NUMERICAL", `the LoRA output norm of layer ${first.layer} ${first.m} is ${first.g}: NaN or Inf in the base model's weights, or a float32 overflow in the model or the LoRA`,
    modelDir, `layers.${first.layer}.${first.m}`);
}
