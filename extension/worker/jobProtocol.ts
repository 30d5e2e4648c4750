/**
 * The messages between the extension host and its worker process (extension/host/worker.ts). Long work (model
 * runs, training, pruning) runs in that separate Node process so the extension host stays responsive, a crash
 * or an out-of-memory kill takes down only the worker, and a cancel that native code ignores can end in a kill.
 * Pure types and checks: no `vscode`, and only type imports of the engine, whose option types the jobs are cut from.
 */
import type { ProgressUpdate } from "../core/util/progress";
import type { SerializedError } from "../core/util/errors";
import type { ProfileOptions } from "../core/importance/options";
import type { PruneOptions } from "../core/prune/prune";
import type { TrainOptions } from "../core/train/settings";
import type { PipelineOptions } from "../core/pipeline/pipeline";
import type { DemoWorkspace } from "../core/demo/demoWorkspace";
import type { PruneMode } from "../core/adapter/dropRecord";
import type { SweepOptions } from "../core/sweep/sweep";

/** The options a job carries, as the engine names them: `Required` fields are always set by the host. */
type JobFields<Options, Always extends keyof Options, Maybe extends keyof Options = never> = Required<Pick<Options, Always>> & Pick<Options, Maybe>;

/** The engine fields a job may carry (absent: the onnx engine); the torch engine's run in one process from the extension. */
type EngineFields = "engine" | "python" | "dtype";

/** The onnx engine's precision fields: the base model's projections and where their quantized weights are cached. */
type PrecisionFields = "precision" | "quantCacheDir";

/** A profile run; the worker writes the profile file itself so the large JSON never crosses the pipe. */
export type ProfileJob = {
  kind: "profile";
  /** Where the worker writes the profile JSON (atomically). */
  outFile: string;
  /** The threshold T whose selection the result's summary describes (the loraDrop.threshold setting). */
  threshold: number;
}
  & JobFields<ProfileOptions, "modelDir" | "adapterDir" | "dataPath" | "maxExamples" | "maxTokens" | "device", "memoryBudget" | "stream" | PrecisionFields | EngineFields>;

/** A drop-and-share prune of an adapter using a saved profile; `force` replaces an existing output (the user confirmed). */
export type PruneJob = { kind: "prune"; profilePath: string }
  & JobFields<PruneOptions, "adapterDir" | "threshold" | "mode" | "format" | "outDir" | "force">;

/** A sweep of a profile's thresholds; the worker writes the sweep file (atomically) and returns a summary. */
export type SweepJob = { kind: "sweep"; profilePath: string; /** Where the worker writes the sweep JSON. */ outFile: string; /** Replace an existing sweep file. */ force: boolean }
  & JobFields<SweepOptions, "modelDir" | "adapterDir" | "dataPath" | "mode" | "maxExamples" | "maxTokens" | "device", "memoryBudget" | "stream" | EngineFields | PrecisionFields>;

/** A LoRA training run: from `initAdapterDir` when given (its r, lora alpha and targets), else a fresh LoRA. */
export type TrainJob = { kind: "train" }
  & JobFields<TrainOptions, "modelDir" | "dataPath" | "outDir" | "r" | "loraAlpha" | "targets" | "epochs" | "lr" | "batchSize" | "device" | "maxTokens" | "force",
    "initAdapterDir" | "logFile" | "memoryBudget" | "stream" | EngineFields>;

/** The whole LoRA-drop pipeline (sample, short training, profile, select, fine-tune, report). Always "share". */
export type PipelineJob = { kind: "pipeline" }
  & JobFields<PipelineOptions, "modelDir" | "dataPath" | "outDir" | "threshold" | "sampleFraction" | "r" | "loraAlpha" | "targets" | "lr" | "batchSize" | "device" | "maxTokens" | "force",
    "memoryBudget" | "stream" | EngineFields>;

/** A demo workspace (tiny model, trained adapter, dataset) written into `dir`, which must be new or empty. */
export type DemoJob = { kind: "demo"; dir: string };

/** Any job. */
export type Job = ProfileJob | PruneJob | SweepJob | TrainJob | PipelineJob | DemoJob;

/** What a profile job returns. */
export interface ProfileResult {
  profilePath: string;
  device: string;
  layers: number;
  sequences: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Peak resident memory of the worker during the profile, when measured. */
  peakRssBytes?: number;
  /** What the profile found, in one or two sentences (viewModel/profileSummary.ts). */
  summary: string[];
}

/** What a prune job returns. */
export interface PruneResult {
  outDir: string;
  threshold: number;
  mode: PruneMode;
  keptLayers: number[];
  sharedLayers: number[];
  paramsBefore: number;
  paramsAfter: number;
}

/** What a sweep job returns (the panel reads the file itself). */
export interface SweepResult {
  sweepPath: string;
  points: number;
  device: string;
  seconds: number;
}

/** What a training job returns. */
export interface TrainResult {
  outDir: string;
  device: string;
  steps: number;
  finalLoss: number;
  trainableParams: number;
  seconds: number;
}

/** What a pipeline job returns. */
export interface PipelineResult {
  outDir: string;
  /** The files worth opening afterwards: the profile, the report, the final adapter. */
  profilePath?: string;
  reportPath?: string;
  adapterDir?: string;
  summary: string;
}

/** What a demo job returns: the paths written and how the adapter's training went. */
export type DemoResult = DemoWorkspace;

/** The result type of each job kind. */
export interface JobResults {
  profile: ProfileResult;
  prune: PruneResult;
  sweep: SweepResult;
  train: TrainResult;
  pipeline: PipelineResult;
  demo: DemoResult;
}

/** One finished training step, as the panel's loss curve needs it. */
export interface TrainStep {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
}

/** Host → worker. */
export type HostToWorker = { type: "start"; job: Job } | { type: "cancel" };

/** Worker → host. */
export type WorkerToHost =
  | { type: "progress"; update: ProgressUpdate }
  | { type: "log"; level: "info" | "warn"; message: string }
  | { type: "trainStep"; step: TrainStep }
  | { type: "done"; result: unknown }
  | { type: "failed"; error: SerializedError };

/** Checks a worker message's outer shape (the worker is our own code, but a crash can leave garbage). */
export function parseWorkerMessage(x: unknown): WorkerToHost | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const m = x as Record<string, unknown>;
  switch (m.type) {
    case "progress": {
      const u = m.update as Record<string, unknown> | undefined;
      return u && typeof u.step === "number" && typeof u.total === "number" ? (m as WorkerToHost) : undefined;
    }
    case "log":
      return (m.level === "info" || m.level === "warn") && typeof m.message === "string" ? (m as WorkerToHost) : undefined;
    case "trainStep": {
      const s = m.step as Record<string, unknown> | undefined;
      return s && ["step", "totalSteps", "loss", "lr", "tokensPerSecond"].every((k) => typeof s[k] === "number") ? (m as WorkerToHost) : undefined;
    }
    case "done":
      return "result" in m ? (m as WorkerToHost) : undefined;
    case "failed": {
      const e = m.error as Record<string, unknown> | undefined;
      return e && typeof e.message === "string" ? (m as WorkerToHost) : undefined;
    }
    default:
      return undefined;
  }
}

/** Checks a host message inside the worker. */
export function parseHostToWorker(x: unknown): HostToWorker | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const m = x as Record<string, unknown>;
  if (m.type === "cancel") return { type: "cancel" };
  if (m.type === "start" && typeof m.job === "object" && m.job !== null && ["profile", "prune", "sweep", "train", "pipeline", "demo"].includes((m.job as Job).kind)) {
    return { type: "start", job: m.job as Job };
  }
  return undefined;
}
