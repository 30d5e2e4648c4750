/**
 * Training checkpoints: the LoRA values, the AdamW moments and step, the random generators' states and the data
 * order — everything a resumed run needs to continue exactly as an uninterrupted one. A checkpoint is a folder
 * (state.json + tensors.safetensors) written atomically, so a crash mid-write leaves the previous one intact.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeDirAtomic } from "../atomicWrite";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, TensorToWrite } from "../safetensors";
import { LoraDropError } from "../errors";
import { AdamW } from "./optim";
import { LoraParam } from "./trainGraph";

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

const paramKey = (p: string, w: "A" | "B") => `param.${p}.${w}`;
const momentKey = (k: "m" | "v", p: string, w: "A" | "B") => `adam.${k}.${p}.${w}`;

/** Writes a checkpoint folder atomically (replacing the previous one only once complete). */
export async function writeCheckpoint(dir: string, state: CheckpointState, params: Map<string, LoraParam>, adam: AdamW): Promise<void> {
  const tensors: TensorToWrite[] = [];
  for (const p of params.values()) {
    for (const w of ["A", "B"] as const) {
      const shape = w === "A" ? [p.r, p.inFeatures] : [p.outFeatures, p.r];
      tensors.push({ name: paramKey(p.name, w), dtype: "F32", shape, data: p[w] });
      const mo = adam.moments.get(`${p.name}.${w}`);
      if (mo) {
        tensors.push({ name: momentKey("m", p.name, w), dtype: "F32", shape, data: mo.m });
        tensors.push({ name: momentKey("v", p.name, w), dtype: "F32", shape, data: mo.v });
      }
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
export function restoreTensors(cp: Checkpoint, params: Map<string, LoraParam>, adam: AdamW, file: string): void {
  const take = (key: string, size: number): Float32Array => {
    const t = cp.tensors.get(key);
    if (!t) throw new LoraDropError("TENSOR_MISSING", `the checkpoint has no tensor ${key}`, file, key);
    if (t.length !== size) throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `${key} has ${t.length} values, expected ${size}`, file, key);
    return t;
  };
  adam.step = cp.state.adamStep;
  for (const p of params.values()) {
    for (const w of ["A", "B"] as const) {
      p[w].set(take(paramKey(p.name, w), p[w].length));
      if (cp.tensors.has(momentKey("m", p.name, w))) {
        adam.moments.set(`${p.name}.${w}`, {
          m: Float32Array.from(take(momentKey("m", p.name, w), p[w].length)),
          v: Float32Array.from(take(momentKey("v", p.name, w), p[w].length)),
        });
      }
    }
  }
}
