/**
 * Training settings: the defaults of TrainOptions, validated, and the fingerprint of the settings that determine
 * a run's trajectory (a resume with a different fingerprint is refused rather than silently diverging).
 */
import * as path from "node:path";
import { LoraDropError } from "../util/errors";
import { checkThreads } from "../runtime/session";
import { ScheduleKind } from "./schedule";
import type { StreamChoice } from "../stream/memoryBudget";
import type { SharedLayers } from "./loraSetup";
import type { LoraDropRecord } from "../adapter/dropRecord";
import type { EngineDevice } from "../torch/engineChoice";
import type { EngineOptions } from "../torch/engineOptions";
import type { TorchLaunch } from "../torch/launcher";

/**
 * What to train and how, on either engine (the engine's own fields: EngineOptions). Defaults (TRAIN_DEFAULTS): r 8,
 * lora alpha 16, q_proj + v_proj, 1 epoch, lr 2e-4, batch 8, linear schedule.
 */
export interface TrainOptions extends EngineOptions {
  modelDir: string; dataPath: string; outDir: string;
  /** Start from an existing adapter's values and structure (r, lora alpha, targets come from it). */
  initAdapterDir?: string;
  r?: number; loraAlpha?: number; targets?: string[]; useRslora?: boolean; loraDropout?: number;
  /** LoRA-drop share set: these layers (per module if a record) use ONE shared LoRA per module. */
  sharedLayers?: SharedLayers;
  /** Train only on these dataset examples (indices into readDataset order). */
  exampleIndices?: number[];
  steps?: number; epochs?: number; lr?: number; batchSize?: number; gradAccum?: number; maxTokens?: number;
  warmupSteps?: number; schedule?: ScheduleKind; weightDecay?: number; maxGradNorm?: number; seed?: number;
  /** Where the model runs (`auto`: the engine picks); each engine has its own devices (DEVICES_OF). */
  device?: EngineDevice;
  /** CPU threads (onnxruntime's intra-op threads, or torch's; per process). */
  threads?: number;
  /** torch: one process (default), or several on this machine and others (data parallel); only node 0 writes. */
  launch?: TorchLaunch;
  /**
   * torch, several nodes: the other nodes write the adapter too (default false: it is node 0's output). The
   * pipeline sets it, since each node's next phases read the adapter back from a folder of that node's own.
   */
  everyNodeWrites?: boolean;
  /** onnx: MLAS weight prepacking in the training session (default off: see LossSessionOptions.prepack). */
  prepack?: boolean;
  /** Write a checkpoint every N optimiser steps (0: never). */
  checkpointEvery?: number;
  /** Default: `<outDir>.checkpoint` beside the output folder, removed once the adapter is written. */
  checkpointDir?: string;
  /** Continue from the checkpoint when there is one. */
  resume?: boolean;
  /** JSONL log of every step. */
  logFile?: string;
  /** The LoRA-drop record the adapter is written with (lora_drop.json and the safetensors metadata); without it, an initial adapter's record is carried over unless `sharedLayers` changes the structure. */
  loraDrop?: LoraDropRecord;
  /** Replace an existing output folder. */
  force?: boolean;
  /** onnx: bytes the streamed working set may use (default: half the available memory). */
  memoryBudget?: number;
  /** onnx: layer streaming (streamed gradients, activation checkpointing at block boundaries); auto: when the float32 weights do not fit the budget. */
  stream?: StreamChoice;
  /** After training, compute the mean loss over all training examples with the final values (TrainResult.finalEvalLoss). */
  finalEval?: boolean;
  /**
   * Sequence classifiers: train the classification head with the LoRA (PEFT's modules_to_save; default true) and
   * save it in the adapter. `false` keeps the head frozen (the adapter's saved head, else the base model's).
   */
  trainHead?: boolean;
}

/** TrainOptions with defaults applied. */
export interface TrainSettings {
  r: number; loraAlpha: number; targets: string[];
  epochs: number; lr: number; batchSize: number; gradAccum: number; maxTokens: number;
  warmupSteps: number; schedule: ScheduleKind; weightDecay: number; maxGradNorm: number; seed: number;
  device: EngineDevice; checkpointEvery: number;
}

/** One optimiser step, as reported to `onStep` and the log. */
export interface TrainEvent { step: number; totalSteps: number; loss: number; lr: number; tokensPerSecond: number; etaSeconds: number; gradNorm: number }

/** The outcome of a training run, on either engine. */
export interface TrainResult {
  adapterDir: string;
  /** The engine and device that trained: the onnx engine's execution provider ("cpu"), or "torch cuda bfloat16". */
  device: string;
  steps: number;
  losses: { step: number; loss: number; lr: number }[];
  finalLoss: number; trainableParams: number; seconds: number;
  /** Values of the trained classification head (0 when none is trained); not counted in trainableParams (LoRA only). */
  headParams: number;
  /** Mean loss over the training examples with the final values (when `finalEval`). */
  finalEvalLoss?: number;
  /** Processes that trained (torch data parallelism; absent: one). */
  worldSize?: number;
  /** Set on a node other than node 0 of a multi-node run: this node trained, and node 0 wrote the adapter (this one too with everyNodeWrites). */
  nodeRank?: number;
}

/** The defaults (PEFT's common LoRA recipe; Hugging Face Trainer's optimiser defaults). */
export const TRAIN_DEFAULTS: TrainSettings = {
  r: 8, loraAlpha: 16, targets: ["q_proj", "v_proj"],
  epochs: 1, lr: 2e-4, batchSize: 8, gradAccum: 1, maxTokens: 512,
  warmupSteps: 0, schedule: "linear", weightDecay: 0, maxGradNorm: 1, seed: 42,
  device: "auto", checkpointEvery: 0,
};

/** Applies defaults and validates every numeric option. */
export function resolveSettings(o: TrainOptions): TrainSettings {
  const d = TRAIN_DEFAULTS;
  const s: TrainSettings = {
    r: o.r ?? d.r, loraAlpha: o.loraAlpha ?? d.loraAlpha, targets: o.targets ?? d.targets,
    epochs: o.epochs ?? d.epochs, lr: o.lr ?? d.lr, batchSize: o.batchSize ?? d.batchSize, gradAccum: o.gradAccum ?? d.gradAccum,
    maxTokens: o.maxTokens ?? d.maxTokens, warmupSteps: o.warmupSteps ?? d.warmupSteps, schedule: o.schedule ?? d.schedule,
    weightDecay: o.weightDecay ?? d.weightDecay, maxGradNorm: o.maxGradNorm ?? d.maxGradNorm, seed: o.seed ?? d.seed,
    device: o.device ?? d.device, checkpointEvery: o.checkpointEvery ?? d.checkpointEvery,
  };
  const bad = (field: string, what: string): never => {
    throw new LoraDropError("INVALID_ARGUMENT", `${field} must be ${what}`, undefined, field);
  };
  const posInt = (v: number, f: string) => { if (!Number.isInteger(v) || v <= 0) bad(f, `a positive integer, got ${v}`); };
  const nonNeg = (v: number, f: string) => { if (!Number.isFinite(v) || v < 0) bad(f, `a non-negative number, got ${v}`); };
  posInt(s.r, "r"); posInt(s.epochs, "epochs"); posInt(s.batchSize, "batchSize"); posInt(s.gradAccum, "gradAccum"); posInt(s.maxTokens, "maxTokens");
  if (o.steps !== undefined) posInt(o.steps, "steps");
  nonNeg(s.lr, "lr"); nonNeg(s.weightDecay, "weightDecay"); nonNeg(s.maxGradNorm, "maxGradNorm"); nonNeg(s.loraAlpha, "loraAlpha");
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) bad("warmupSteps", `a non-negative integer, got ${s.warmupSteps}`);
  if (!Number.isInteger(s.checkpointEvery) || s.checkpointEvery < 0) bad("checkpointEvery", `a non-negative integer, got ${s.checkpointEvery}`);
  if (!Number.isInteger(s.seed)) bad("seed", `an integer, got ${s.seed}`);
  if (!["linear", "cosine", "constant"].includes(s.schedule)) bad("schedule", `linear, cosine or constant, got ${s.schedule}`);
  if (s.targets.length === 0) bad("targets", "a non-empty list of module names");
  if (o.loraDropout !== undefined && !(o.loraDropout >= 0 && o.loraDropout < 1)) bad("loraDropout", `a number in [0, 1), got ${o.loraDropout}`);
  checkThreads(o.threads);
  return s;
}

/**
 * The settings that decide a run's trajectory (device, threads and streaming excluded: they change rounding, not the
 * maths). The keys are what checkpoints store, so they keep their first names (`alpha`, `maxLength`).
 */
export function fingerprintOf(o: TrainOptions, s: TrainSettings, totalSteps: number, examples: number): Record<string, unknown> {
  return {
    model: path.resolve(o.modelDir), data: path.resolve(o.dataPath), examples, exampleIndices: o.exampleIndices ?? null,
    initAdapter: o.initAdapterDir ? path.resolve(o.initAdapterDir) : null,
    r: s.r, alpha: s.loraAlpha, targets: s.targets, useRslora: o.useRslora ?? false, loraDropout: o.loraDropout ?? null,
    sharedLayers: o.sharedLayers ?? null, totalSteps, lr: s.lr, batchSize: s.batchSize, gradAccum: s.gradAccum,
    maxLength: s.maxTokens, warmupSteps: s.warmupSteps, schedule: s.schedule, weightDecay: s.weightDecay,
    maxGradNorm: s.maxGradNorm, seed: s.seed, trainHead: o.trainHead ?? null,
  };
}
