/**
 * Training checkpoints: the LoRA values (and a trained classification head), the AdamW moments and step, the random generators' states and the data
 * order — everything a resumed run needs to continue exactly as an uninterrupted one. A checkpoint is a folder
 * (state.json + tensors.safetensors) written atomically, so a crash mid-write leaves the previous one intact.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeDirAtomic } from "../io/atomicWrite";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, TensorToWrite } from "../io/safetensors";
import { LoraDropError } from "../util/errors";
import { AdamW } from "./optim";
import { LoraParam, type HeadParam } from "../runtime/lossSession";

/** The format version of checkpoints this code writes and reads. */
export const CHECKPOINT_VERSION = 1;

/** The scalar part of a checkpoint. */
export interface CheckpointState {
  version: number;
  /** Optimiser steps completed. */
  step: number;
  totalSteps: number;
  /** The settings that determine the run's trajectory; a resume with other settings is refused. */
  fingerprint: Record<string, unknown>;
  dataRng: number;
  dropoutRng: number;
  epoch: number;
  /** The current epoch's example order and the position of the next micro-batch in it. */
  order: number[];
  position: number;
  adamStep: number;
  losses: { step: number; loss: number; lr: number }[];
  tokens: number;
}

/** A checkpoint as read back. */
export interface Checkpoint {
  state: CheckpointState;
  tensors: Map<string, Float32Array>;
}

/** A tensor the optimiser updates, under its AdamW key (`{param}.A`, `{param}.B`, `head.{name}`). */
interface TrainedTensor { key: string; shape: number[]; data: Float32Array }

/** Every trained tensor of a run: the LoRA pairs, then the classification head's tensors (when trained). */
export function trainedTensors(params: Map<string, LoraParam>, head?: Map<string, HeadParam>): TrainedTensor[] {
  const out: TrainedTensor[] = [];
  for (const p of params.values()) {
    out.push({ key: `${p.name}.A`, shape: [p.r, p.inFeatures], data: p.A }, { key: `${p.name}.B`, shape: [p.outFeatures, p.r], data: p.B });
  }
  for (const h of head?.values() ?? []) out.push({ key: headKey(h.name), shape: h.shape, data: h.data });
  return out;
}

/** The AdamW (and checkpoint) key of a head tensor. */
export const headKey = (name: string) => `head.${name}`;
const valueKey = (key: string) => `param.${key}`;
const momentKey = (k: "m" | "v", key: string) => `adam.${k}.${key}`;

/** Writes a checkpoint folder atomically (replacing the previous one only once complete). */
export async function writeCheckpoint(dir: string, state: CheckpointState, params: Map<string, LoraParam>, adam: AdamW, head?: Map<string, HeadParam>): Promise<void> {
  const tensors: TensorToWrite[] = [];
  for (const t of trainedTensors(params, head)) {
    tensors.push({ name: valueKey(t.key), dtype: "F32", shape: t.shape, data: t.data });
    const mo = adam.moments.get(t.key);
    if (mo) {
      tensors.push({ name: momentKey("m", t.key), dtype: "F32", shape: t.shape, data: mo.m });
      tensors.push({ name: momentKey("v", t.key), dtype: "F32", shape: t.shape, data: mo.v });
    }
  }
  await writeDirAtomic(dir, (tmp) => {
    fs.writeFileSync(path.join(tmp, "tensors.safetensors"), encodeSafetensors(tensors, { format: "lora-drop-checkpoint" }));
    fs.writeFileSync(path.join(tmp, "state.json"), JSON.stringify(state) + "\n");
  }, true);
}

/** Reads a checkpoint folder, or undefined when there is none. */
export function readCheckpoint(dir: string): Checkpoint | undefined {
  const stateFile = path.join(dir, "state.json");
  if (!fs.existsSync(stateFile)) return undefined;
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as CheckpointState;
  } catch (e) {
    throw new LoraDropError("CONFIG_INVALID", `the checkpoint state is not valid JSON (${(e as Error).message})`, stateFile);
  }
  if (state.version !== CHECKPOINT_VERSION) {
    throw new LoraDropError("CONFIG_INVALID", `checkpoint version ${JSON.stringify(state.version)} is not supported (this version reads ${CHECKPOINT_VERSION})`, stateFile, "version");
  }
  const index = readSafetensorsIndex(path.join(dir, "tensors.safetensors"));
  const tensors = new Map<string, Float32Array>();
  for (const name of index.tensors.keys()) tensors.set(name, readTensorF32(index, name).data);
  return { state, tensors };
}

/** Restores LoRA values and AdamW state from a checkpoint's tensors. */
export function restoreTensors(cp: Checkpoint, params: Map<string, LoraParam>, adam: AdamW, file: string, head?: Map<string, HeadParam>): void {
  const take = (key: string, size: number): Float32Array => {
    const t = cp.tensors.get(key);
    if (!t) throw new LoraDropError("TENSOR_MISSING", `the checkpoint has no tensor ${key}`, file, key);
    if (t.length !== size) throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `${key} has ${t.length} values, expected ${size}`, file, key);
    return t;
  };
  adam.step = cp.state.adamStep;
  for (const t of trainedTensors(params, head)) {
    t.data.set(take(valueKey(t.key), t.data.length));
    if (cp.tensors.has(momentKey("m", t.key))) {
      adam.moments.set(t.key, { m: Float32Array.from(take(momentKey("m", t.key), t.data.length)), v: Float32Array.from(take(momentKey("v", t.key), t.data.length)) });
    }
  }
}
