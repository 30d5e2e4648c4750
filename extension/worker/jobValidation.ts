/**
 * Field checks of a job as the worker receives it. The host builds jobs from validated settings, but the message
 * crosses a process boundary: a crafted or corrupted one must end in a typed error, not in a crash or in garbage
 * (a string where the engine expects a number) reaching the engine. Ranges the engine checks itself (threshold,
 * learning rate…) are left to it, so its messages stay the ones users see; only types are checked here, plus
 * the fields the engine takes as given (the memory budget, the streaming choice, the device, the engine and its
 * interpreter and dtype, the precision; which device and options go with which engine is the engine's own check).
 * Pure: no `vscode`; the allowed values come from the engine's own lists.
 */
import type { Job } from "./jobProtocol";
import { STREAM_CHOICES } from "../core/stream/memoryBudget";
import { ENGINE_CHOICES, ENGINE_DEVICES } from "../core/torch/engineChoice";
import { TORCH_DTYPES } from "../core/torch/protocol";
import { ADAPTER_FORMATS, PRUNE_MODES } from "../core/adapter/dropRecord";
import { PRECISIONS } from "../core/quant/precision";

/** What is wrong with a job: the field and a sentence about it. */
export interface JobProblem {
  field: string;
  message: string;
}

/** The first problem of a job's fields, or undefined when every field has the type its kind needs. */
export function jobProblem(x: unknown): JobProblem | undefined {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return { field: "job", message: "the job is not an object" };
  const job = x as Record<string, unknown>;
  if (typeof job.kind !== "string" || !Object.prototype.hasOwnProperty.call(FIELDS, job.kind)) return { field: "kind", message: `kind must be one of ${Object.keys(FIELDS).join(", ")}, got ${describe(job.kind)}` };
  const fields: Record<string, Check | Optional> = FIELDS[job.kind as Job["kind"]];
  for (const [name, rule] of Object.entries(fields)) {
    const value = job[name];
    if (typeof rule !== "function" && value === undefined) continue;
    const wanted = (typeof rule === "function" ? rule : rule.optional)(value);
    if (wanted) return { field: name, message: `${name} must be ${wanted}, got ${describe(value)}` };
  }
  return undefined;
}

/** A check returns what the value should have been, or undefined when it is fine. */
type Check = (v: unknown) => string | undefined;

const text: Check = (v) => (typeof v === "string" ? undefined : "a string");
const number: Check = (v) => (typeof v === "number" && Number.isFinite(v) ? undefined : "a finite number");
const count: Check = (v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 1 ? undefined : "a positive integer");
const flag: Check = (v) => (typeof v === "boolean" ? undefined : "true or false");
const texts: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === "string") ? undefined : "a list of strings");
const oneOf = (...values: readonly string[]): Check => (v) => (typeof v === "string" && values.includes(v) ? undefined : `one of ${values.join(", ")}`);
const device = oneOf(...ENGINE_DEVICES);
const streamChoice = oneOf(...STREAM_CHOICES);
const engine = oneOf(...ENGINE_CHOICES);
const dtype = oneOf(...TORCH_DTYPES);
const precision = oneOf(...PRECISIONS);

/** A field that may be absent (checked when present). */
interface Optional { optional: Check }
const optional = (check: Check): Optional => ({ optional: check });

/** The checks of the engine fields every model-running job may carry. */
const ENGINE_CHECKS = { engine: optional(engine), python: optional(text), dtype: optional(dtype) } as const;

/** The checks of the precision fields of the jobs that run the base model forward (profile, sweep). */
const PRECISION_CHECKS = { precision: optional(precision), quantCacheDir: optional(text) } as const;

/**
 * The checks of one job kind, derived from its type: every field has one, and exactly the fields that may be
 * absent are wrapped in `optional`, so the table cannot drift from the job types (and so from the engine's options).
 */
type FieldChecks<J> = { [F in Exclude<keyof J, "kind">]-?: undefined extends J[F] ? Optional : Check };

const FIELDS: { [K in Job["kind"]]: FieldChecks<Extract<Job, { kind: K }>> } = {
  profile: {
    modelDir: text, adapterDir: text, dataPath: text, maxExamples: count, maxTokens: count, device, outFile: text, threshold: number,
    memoryBudget: optional(count), stream: optional(streamChoice), ...PRECISION_CHECKS, ...ENGINE_CHECKS,
  },
  prune: { adapterDir: text, profilePath: text, threshold: number, mode: oneOf(...PRUNE_MODES), format: oneOf(...ADAPTER_FORMATS), outDir: text, force: flag },
  sweep: {
    modelDir: text, adapterDir: text, profilePath: text, dataPath: text, mode: oneOf(...PRUNE_MODES), maxExamples: count, maxTokens: count, device, outFile: text, force: flag,
    memoryBudget: optional(count), stream: optional(streamChoice), ...ENGINE_CHECKS, ...PRECISION_CHECKS,
  },
  train: {
    modelDir: text, dataPath: text, outDir: text, initAdapterDir: optional(text), r: count, loraAlpha: number, targets: texts, epochs: count, lr: number,
    batchSize: count, device, maxTokens: count, logFile: optional(text), force: flag, memoryBudget: optional(count), stream: optional(streamChoice),
    ...ENGINE_CHECKS,
  },
  pipeline: {
    modelDir: text, dataPath: text, outDir: text, threshold: number, sampleFraction: number, r: count, loraAlpha: number, targets: texts, lr: number,
    batchSize: count, device, maxTokens: count, force: flag, memoryBudget: optional(count), stream: optional(streamChoice),
    ...ENGINE_CHECKS,
  },
  demo: { dir: text },
};

/** A short rendering of a bad value for the message (never the whole of a huge one). */
function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  let json: string;
  try {
    json = JSON.stringify(v) ?? typeof v;
  } catch {
    json = typeof v;
  }
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
