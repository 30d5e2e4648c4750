/**
 * The sweep file written by `lora-drop sweep` (and the panel's "Evaluate thresholds"): the loss of every candidate
 * LoRA-drop pruning of an adapter, measured before any retraining, beside the base model's and the full adapter's.
 * Versioned like the profile; snake_case because Python tools read it too. The validator is pure (no Node, no
 * DOM), so the engine's reader and the panel check a sweep with the same code.
 */
import type { LayerSets, PruneMode } from "../adapter/dropRecord";
import { ENGINE_CHOICES, type EngineChoice } from "../torch/engineChoice";
import { PRECISIONS, type Precision } from "../quant/precision";

/** The schema tag stored in every sweep file. */
export const SWEEP_SCHEMA = "lora-drop.sweep";
/** The version of the sweep format this code writes and reads. */
export const SWEEP_VERSION = 1;
/** Most points a sweep file may hold (a per-module sweep of 80 layers × 7 modules has at most 561). */
export const MAX_SWEEP_POINTS = 100_000;

/** The loss measured: next-token cross-entropy of a causal LM, or the class cross-entropy of a sequence classifier. */
export type SweepTask = "causal-lm" | "sequence-classification";

/** One candidate pruning and what it measured. */
export interface SweepPoint {
  /** The threshold T the candidate was built with (any T up to here, above the previous point's coverage, builds the same). */
  threshold: number;
  /** Cumulative importance of the kept set (per module with a per-module sweep). */
  coverage: number | Record<string, number>;
  /** Layers that keep their own LoRA (one list, or one per module). */
  kept_layers: LayerSets;
  /** Layers that share one LoRA per module ("share") or lose theirs ("drop"). */
  shared_layers: LayerSets;
  /** LoRA parameters of the pruned adapter, each shared pair counted once (as `prune` reports them). */
  lora_params: number;
  /** Mean loss over the measured targets. */
  loss: number;
  /** Share of examples classified correctly (sequence classifiers only). */
  accuracy?: number;
}

/** The whole sweep file. */
export interface SweepFile {
  schema: typeof SWEEP_SCHEMA;
  version: typeof SWEEP_VERSION;
  /** ISO time the sweep was written. */
  created: string;
  model: { path: string; architecture: string };
  adapter: { path: string; total_params: number };
  /** The profile whose importance chose the candidates; `created` identifies the very run. */
  profile: { path: string; criterion: string; created: string };
  mode: PruneMode;
  per_module: boolean;
  task: SweepTask;
  /** The engine that measured it (absent in files written before the torch engine could sweep: those are onnx). */
  engine?: EngineChoice;
  /** The loss with no LoRA at all (a classifier keeps the adapter's saved head). */
  base_loss: number;
  /** The loss of the adapter as it is. */
  full_loss: number;
  base_accuracy?: number;
  full_accuracy?: number;
  /** Candidates sorted by lora_params (then threshold). */
  points: SweepPoint[];
  /** What the losses were measured on, and how long it took. */
  measured: {
    data: string;
    max_examples: number;
    max_tokens: number;
    examples: number;
    /** Tokens fed per configuration. */
    tokens: number;
    /** Loss targets per configuration: predicted tokens, or classified examples. */
    targets: number;
    /** Where it ran: the onnx engine's execution provider ("cpu", "webgpu"), or "torch <device> <dtype>". */
    device: string;
    /** The base model's projections (absent in files written before the option: fp32). */
    precision?: Precision;
    streamed: boolean;
    /** Streamed: configurations carried through the blocks together (the weights are read once per such group). */
    configurations_per_pass?: number;
    seconds: number;
    peak_rss_bytes?: number;
  };
}

/** A problem found in a sweep: the field and what is wrong with it. */
export interface SweepProblem {
  field: string;
  message: string;
}

/** The first problem of a parsed sweep, or undefined when it is a sweep this version reads. */
export function sweepProblem(x: unknown): SweepProblem | undefined {
  const bad = (field: string, message: string): SweepProblem => ({ field, message });
  if (!isObject(x)) return bad("", "not a JSON object");
  if (x.schema !== SWEEP_SCHEMA) return bad("schema", `not a LoRA-drop sweep (schema ${short(x.schema)})`);
  if (x.version !== SWEEP_VERSION) return bad("version", `sweep version ${short(x.version)} is not supported (this version reads ${SWEEP_VERSION})`);
  if (!isText(x.created)) return bad("created", "created must be a string");
  if (!isObject(x.model) || !isText(x.model.path) || !isText(x.model.architecture)) return bad("model", "model must have a path and an architecture");
  if (!isObject(x.adapter) || !isText(x.adapter.path) || !isCount(x.adapter.total_params)) return bad("adapter", "adapter must have a path and total_params");
  if (!isObject(x.profile) || !isText(x.profile.path) || !isText(x.profile.criterion) || !isText(x.profile.created)) return bad("profile", "profile must have a path, a criterion and created");
  if (x.mode !== "share" && x.mode !== "drop") return bad("mode", "mode must be share or drop");
  if (typeof x.per_module !== "boolean") return bad("per_module", "per_module must be true or false");
  if (x.task !== "causal-lm" && x.task !== "sequence-classification") return bad("task", "task must be causal-lm or sequence-classification");
  if (x.engine !== undefined && !(ENGINE_CHOICES as readonly unknown[]).includes(x.engine)) return bad("engine", `engine must be one of ${ENGINE_CHOICES.join(", ")}`);
  for (const k of ["base_loss", "full_loss"] as const) if (!isFinite(x[k])) return bad(k, `${k} must be a finite number`);
  for (const k of ["base_accuracy", "full_accuracy"] as const) if (x[k] !== undefined && !isShare(x[k])) return bad(k, `${k} must be in [0, 1]`);
  const m = x.measured;
  if (!isObject(m) || !isText(m.data) || !isText(m.device) || typeof m.streamed !== "boolean") return bad("measured", "measured must name the data and the device");
  for (const k of ["max_examples", "max_tokens", "examples", "tokens", "targets"] as const) if (!isCount(m[k])) return bad(`measured.${k}`, `measured.${k} must be a count`);
  if (m.precision !== undefined && !(PRECISIONS as readonly unknown[]).includes(m.precision)) return bad("measured.precision", `measured.precision must be one of ${PRECISIONS.join(", ")}`);
  if (m.configurations_per_pass !== undefined && !isCount(m.configurations_per_pass)) return bad("measured.configurations_per_pass", "measured.configurations_per_pass must be a count");
  if (!isFinite(m.seconds) || m.seconds < 0 || (m.peak_rss_bytes !== undefined && !isCount(m.peak_rss_bytes))) return bad("measured", "measured.seconds (and peak_rss_bytes) must be non-negative numbers");
  if (!Array.isArray(x.points) || x.points.length === 0 || x.points.length > MAX_SWEEP_POINTS) return bad("points", `points must be a list of 1–${MAX_SWEEP_POINTS} candidates`);
  let last = -1;
  for (let i = 0; i < x.points.length; i++) {
    const problem = pointProblem(x.points[i], x.per_module);
    if (problem) return bad(`points[${i}]${problem.field}`, `point ${i}: ${problem.message}`);
    const params = (x.points[i] as SweepPoint).lora_params;
    if (params < last) return bad(`points[${i}].lora_params`, "points must be sorted by lora_params");
    last = params;
  }
  return undefined;
}

/** True when `x` is a valid sweep (see sweepProblem). */
export function isSweepFile(x: unknown): x is SweepFile {
  return sweepProblem(x) === undefined;
}

function pointProblem(p: unknown, perModule: boolean): SweepProblem | undefined {
  if (!isObject(p)) return { field: "", message: "not an object" };
  if (!isFinite(p.threshold) || !(p.threshold > 0 && p.threshold <= 1)) return { field: ".threshold", message: "threshold must be in (0, 1]" };
  if (!isCount(p.lora_params)) return { field: ".lora_params", message: "lora_params must be a count" };
  if (!isFinite(p.loss)) return { field: ".loss", message: "loss must be a finite number" };
  if (p.accuracy !== undefined && !isShare(p.accuracy)) return { field: ".accuracy", message: "accuracy must be in [0, 1]" };
  for (const k of ["kept_layers", "shared_layers"] as const) {
    if (!isLayerSets(p[k], perModule)) return { field: `.${k}`, message: `${k} must be ${perModule ? "an object of layer lists per module" : "a list of layer indices"}` };
  }
  const coverageOk = perModule ? isObject(p.coverage) && Object.values(p.coverage).every(isShare) : isShare(p.coverage);
  if (!coverageOk) return { field: ".coverage", message: "coverage must be in [0, 1] (per module with a per-module sweep)" };
  return undefined;
}

function isLayerSets(x: unknown, perModule: boolean): boolean {
  const isList = (v: unknown) => Array.isArray(v) && v.length <= 100_000 && v.every(isCount);
  return perModule ? isObject(x) && Object.keys(x).length <= 256 && Object.values(x).every(isList) : isList(x);
}

type Fields = Record<string, unknown>;
const isObject = (x: unknown): x is Fields => typeof x === "object" && x !== null && !Array.isArray(x);
const isText = (x: unknown): x is string => typeof x === "string" && x.length <= 8192;
const isFinite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isCount = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
// Coverage may exceed 1 by float rounding of a sum of shares.
const isShare = (x: unknown): x is number => isFinite(x) && x >= 0 && x <= 1 + 1e-9;
const short = (x: unknown): string => {
  const s = typeof x === "string" ? JSON.stringify(x.slice(0, 40)) : String(x);
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
};
