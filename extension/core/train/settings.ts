/**
 * Training settings: the defaults of TrainOptions, validated, and the fingerprint of the settings that determine
 * a run's trajectory (a resume with a different fingerprint is refused rather than silently diverging).
 */
import * as path from "node:path";
import { LoraDropError } from "../errors";
import { DeviceChoice } from "../session";
import { ScheduleKind } from "./schedule";
import type { TrainOptions } from "./train";

/** TrainOptions with defaults applied. */
export interface TrainSettings {
  r: number; alpha: number; targets: string[];
  epochs: number; lr: number; batchSize: number; gradAccum: number; maxLength: number;
  warmupSteps: number; schedule: ScheduleKind; weightDecay: number; maxGradNorm: number; seed: number;
  device: DeviceChoice; checkpointEvery: number;
}

/** The defaults (PEFT's common LoRA recipe; Hugging Face Trainer's optimiser defaults). */
export const TRAIN_DEFAULTS: TrainSettings = {
  r: 8, alpha: 16, targets: ["q_proj", "v_proj"],
  epochs: 1, lr: 2e-4, batchSize: 8, gradAccum: 1, maxLength: 512,
  warmupSteps: 0, schedule: "linear", weightDecay: 0, maxGradNorm: 1, seed: 42,
  device: "auto", checkpointEvery: 0,
};

/** Applies defaults and validates every numeric option. */
export function resolveSettings(o: TrainOptions): TrainSettings {
  const d = TRAIN_DEFAULTS;
  const s: TrainSettings = {
    r: o.r ?? d.r, alpha: o.alpha ?? d.alpha, targets: o.targets ?? d.targets,
    epochs: o.epochs ?? d.epochs, lr: o.lr ?? d.lr, batchSize: o.batchSize ?? d.batchSize, gradAccum: o.gradAccum ?? d.gradAccum,
    maxLength: o.maxLength ?? d.maxLength, warmupSteps: o.warmupSteps ?? d.warmupSteps, schedule: o.schedule ?? d.schedule,
    weightDecay: o.weightDecay ?? d.weightDecay, maxGradNorm: o.maxGradNorm ?? d.maxGradNorm, seed: o.seed ?? d.seed,
    device: o.device ?? d.device, checkpointEvery: o.checkpointEvery ?? d.checkpointEvery,
  };
  const bad = (field: string, what: string): never => {
    throw new LoraDropError("INVALID_ARGUMENT", `${field} must be ${what}`, undefined, field);
  };
  const posInt = (v: number, f: string) => { if (!Number.isInteger(v) || v <= 0) bad(f, `a positive integer, got ${v}`); };
  const nonNeg = (v: number, f: string) => { if (!Number.isFinite(v) || v < 0) bad(f, `a non-negative number, got ${v}`); };
  posInt(s.r, "r"); posInt(s.epochs, "epochs"); posInt(s.batchSize, "batchSize"); posInt(s.gradAccum, "gradAccum"); posInt(s.maxLength, "maxLength");
  if (o.steps !== undefined) posInt(o.steps, "steps");
  nonNeg(s.lr, "lr"); nonNeg(s.weightDecay, "weightDecay"); nonNeg(s.maxGradNorm, "maxGradNorm"); nonNeg(s.alpha, "alpha");
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) bad("warmupSteps", `a non-negative integer, got ${s.warmupSteps}`);
  if (!Number.isInteger(s.checkpointEvery) || s.checkpointEvery < 0) bad("checkpointEvery", `a non-negative integer, got ${s.checkpointEvery}`);
  if (!Number.isInteger(s.seed)) bad("seed", `an integer, got ${s.seed}`);
  if (!["linear", "cosine", "constant"].includes(s.schedule)) bad("schedule", `linear, cosine or constant, got ${s.schedule}`);
  if (s.targets.length === 0) bad("targets", "a non-empty list of module names");
  return s;
}

/** The settings that decide a run's trajectory (device, threads and streaming excluded: they change rounding, not the maths). */
export function fingerprintOf(o: TrainOptions, s: TrainSettings, totalSteps: number, examples: number): Record<string, unknown> {
  return {
    model: path.resolve(o.modelDir), data: path.resolve(o.dataPath), examples, exampleIndices: o.exampleIndices ?? null,
    initAdapter: o.initAdapterDir ? path.resolve(o.initAdapterDir) : null,
    r: s.r, alpha: s.alpha, targets: s.targets, useRslora: o.useRslora ?? false, loraDropout: o.loraDropout ?? null,
    sharedLayers: o.sharedLayers ?? null, totalSteps, lr: s.lr, batchSize: s.batchSize, gradAccum: s.gradAccum,
    maxLength: s.maxLength, warmupSteps: s.warmupSteps, schedule: s.schedule, weightDecay: s.weightDecay,
    maxGradNorm: s.maxGradNorm, seed: s.seed, trainHead: o.trainHead ?? null,
  };
}
