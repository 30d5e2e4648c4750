/**
 * The profile file written by `lora-drop profile` and read by the heatmap panel and `lora-drop prune`.
 *
 * Versioned: `schema` and `version` identify the format; readers reject other versions with a clear error.
 * Field names are snake_case because the file is meant to be read by Python tools too.
 */

/** The schema tag stored in every profile file. */
export const PROFILE_SCHEMA = "lora-drop.profile";
/** The version of the profile format this code writes and reads. */
export const PROFILE_VERSION = 1;

import { engineLabel, type EngineChoice } from "../torch/engineChoice";
import type { Precision } from "../quant/precision";
import { RECORD_CRITERIA } from "../adapter/dropRecord";

/** How layer importance was measured. `output` is LoRA-drop's criterion. */
export type Criterion = (typeof RECORD_CRITERIA)[number];

/** Every criterion, for option lists and validation (the same list a pruned adapter's record accepts). */
export const CRITERIA: readonly Criterion[] = RECORD_CRITERIA;

/**
 * Criteria whose raw importance may be negative: ablation's loss increase is below zero for a layer whose LoRA
 * hurts on the data. Their normalised importance counts only the positive part (see normaliseImportance).
 */
export const SIGNED_CRITERIA: readonly Criterion[] = ["ablation"];

/** One profiled sequence: its token ids and their display strings. */
export interface ProfileSequence {
  /** Token ids as fed to the model. */
  ids: number[];
  /** The tokenizer's token strings (raw data: display as text, never as HTML). */
  tokens: string[];
  /** True where the token is a special token (BOS, EOS, padding, CLS…). */
  special: boolean[];
  /** Index of the dataset example this sequence came from. */
  example: number;
}

/** Importance numbers derived from the norms. */
export interface ProfileImportance {
  /**
   * g_i, one per layer: for `output` the sum over modules, sequences and tokens of ||s·B·A·x||²; for `ablation` the
   * loss increase when the layer's LoRA is removed (negative when removing it lowers the loss).
   */
  per_layer_raw: number[];
  /** I_i = max(g_i, 0) / Σ max(g, 0); sums to 1 (all zeros when no layer has a positive g). */
  per_layer: number[];
  /** Per module, per layer: the raw sums for that module alone. */
  per_module_raw: Record<string, number[]>;
  /** Per module, per layer: normalised within the module (each module's list sums to 1). */
  per_module: Record<string, number[]>;
}

/** The whole profile file. */
export interface ProfileFile {
  schema: typeof PROFILE_SCHEMA;
  version: typeof PROFILE_VERSION;
  /** ISO time the profile was written. */
  created: string;
  criterion: Criterion;
  /** Where it ran: the onnx engine's execution provider ("cpu", "cuda", "webgpu"), or "torch <device> <dtype>" ("torch cuda bfloat16"). */
  device: string;
  /** The engine that measured it (absent in files written before there were two engines: those are onnx). */
  engine?: EngineChoice;
  /** The precision of the base model's projections (absent in files written before the option: those are fp32). */
  precision?: Precision;
  model: {
    path: string;
    architecture: string;
    num_layers: number;
    hidden_size: number;
    vocab_size: number;
  };
  adapter: {
    path: string;
    r: number;
    lora_alpha: number;
    target_modules: string[];
    /** Number of LoRA parameters per module and layer (0 where the layer has no LoRA for that module). */
    params: Record<string, number[]>;
    /** Total LoRA parameters of the adapter. */
    total_params: number;
  };
  settings: {
    data: string;
    max_examples: number;
    max_tokens: number;
  };
  /** Layer indices, 0 … num_layers-1. Every per-layer array below is indexed by position in this list. */
  layers: number[];
  /** Target module names in a fixed order (e.g. ["q_proj", "v_proj"]). */
  modules: string[];
  sequences: ProfileSequence[];
  /**
   * norms[module][layer][sequence][token] = ||s·B·A·x||² for that token (criterion "output").
   * Layers where the module carries no LoRA hold zeros. Absent for criteria that are not per token.
   */
  norms?: Record<string, number[][][]>;
  importance: ProfileImportance;
  /** Criterion `ablation`: the loss of the adapter as it is, and whether each module was also removed on its own. */
  ablation?: {
    full_loss: number;
    /** True: per_module_raw[m][i] is the loss increase when only module m of layer i loses its LoRA. False: it repeats the layer's. */
    per_module: boolean;
  };
  /** Wall-clock figures of the run. */
  timing: {
    seconds: number; tokens: number; tokens_per_second: number;
    /** Highest resident memory sampled during the run, in bytes (absent in older files). */
    peak_rss_bytes?: number;
  };
}

/** The precision of a profile: its `precision` field, or fp32 for files written before the field existed. */
export function profilePrecision(p: Pick<ProfileFile, "precision">): Precision {
  return p.precision ?? "fp32";
}

/** The engine of a profile: its `engine` field, or onnx for files written before the field existed. */
export function profileEngine(p: Pick<ProfileFile, "engine">): EngineChoice {
  return p.engine ?? "onnx";
}

/** The engine and device a profile ran on, as one label: "onnx cpu", "torch cuda bfloat16". */
export function profileRunLabel(p: Pick<ProfileFile, "engine" | "device">): string {
  const engine = profileEngine(p);
  return p.device.startsWith(`${engine} `) ? p.device : engineLabel(engine, p.device);
}
