/**
 * The options of a profile run, whatever the criterion, and their defaults.
 */
import type { DeviceChoice } from "../runtime/session";
import type { StreamChoice, StreamPlan } from "../stream/memoryBudget";
import type { EngineDevice } from "../torch/engineChoice";
import type { EngineOptions } from "../torch/engineOptions";
import type { Criterion } from "./profileSchema";
import type { Precision } from "../quant/precision";

/** Defaults of the optional fields. */
export const PROFILE_DEFAULTS = { maxExamples: 64, maxTokens: 128, batchSize: 8 } as const;

/** What to profile and how, on either engine (the engine's own fields: EngineOptions). */
export interface ProfileOptions extends EngineOptions {
  modelDir: string;
  adapterDir: string;
  dataPath: string;
  /** Examples taken from the start of the dataset (default PROFILE_DEFAULTS.maxExamples). */
  maxExamples?: number;
  /** Tokens per example at most (default 128). */
  maxTokens?: number;
  /** Sequences per session run (default 8). */
  batchSize?: number;
  /** Where the model runs (`auto`: the engine picks); each engine has its own devices (DEVICES_OF). */
  device?: EngineDevice;
  /** CPU threads (onnxruntime's intra-op threads, or torch's). */
  threads?: number;
  /**
   * `output` (LoRA-drop, default), `weight` (||s·B·A||_F²), `gradient` (||∂L/∂A||² + ||∂L/∂B||², training graph) or
   * `ablation` (the loss increase when a layer's LoRA is removed).
   */
  criterion?: Criterion;
  /** Ablation: also remove each module of each layer on its own, for per-module importance (one more evaluation per pair). */
  ablationPerModule?: boolean;
  /** onnx: bytes the streamed working set may use (default: half the available memory). */
  memoryBudget?: number;
  /** onnx: run layer blocks one after another from the shards (`auto`: when the float32 model exceeds the budget). */
  stream?: StreamChoice;
  /**
   * onnx: the projections' precision (default fp32). int8 and int4 quantize the base model's projection weights at
   * load into a disk cache (`quantCacheDir`); LoRA and the norm taps stay float32. The output and ablation criteria.
   */
  precision?: Precision;
  /** Where quantized weights are cached (default: $LORA_DROP_CACHE/quant, else ~/.cache/lora-drop/quant). */
  quantCacheDir?: string;
  /** Called once the streaming decision is made (the CLI prints it). */
  onPlan?: (plan: StreamPlan) => void;
}

/** ProfileOptions as the onnx engine's criteria take them: with one of its devices. */
export type OnnxProfileOptions = ProfileOptions & { device?: DeviceChoice };
