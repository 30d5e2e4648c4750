/**
 * The options of a profile run, whatever the criterion, and their defaults.
 */
import type { DeviceChoice } from "../runtime/session";
import type { StreamChoice, StreamPlan } from "../stream/memoryBudget";
import type { Criterion } from "./profileSchema";

/** Defaults of the optional fields. */
export const PROFILE_DEFAULTS = { maxExamples: 64, maxTokens: 128, batchSize: 8 } as const;

/** What to profile and how. */
export interface ProfileOptions {
  modelDir: string;
  adapterDir: string;
  dataPath: string;
  /** Examples taken from the start of the dataset (default PROFILE_DEFAULTS.maxExamples). */
  maxExamples?: number;
  /** Tokens per example at most (default 128). */
  maxTokens?: number;
  /** Sequences per session run (default 8). */
  batchSize?: number;
  device?: DeviceChoice;
  threads?: number;
  /**
   * `output` (LoRA-drop, default), `weight` (||s·B·A||_F²), `gradient` (||∂L/∂A||² + ||∂L/∂B||², training graph) or
   * `ablation` (the loss increase when a layer's LoRA is removed).
   */
  criterion?: Criterion;
  /** Ablation: also remove each module of each layer on its own, for per-module importance (one more evaluation per pair). */
  ablationPerModule?: boolean;
  /** Bytes the streamed working set may use (default: half the available memory). */
  memoryBudget?: number;
  /** Run layer blocks one after another from the shards (`auto`: when the float32 model exceeds the budget). */
  stream?: StreamChoice;
  /** Called once the streaming decision is made (the CLI prints it). */
  onPlan?: (plan: StreamPlan) => void;
}
