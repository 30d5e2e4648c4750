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
import { readRegularText } from "../io/regularFile";
import { parseCheckpointState, type CheckpointState } from "./checkpointState";
import { AdamW } from "./optim";
import { LoraParam, type HeadParam } from "../runtime/lossSession";

/** The state's version and type live beside its parser (checkpointState.ts). */
export { CHECKPOINT_VERSION, type CheckpointState } from "./checkpointState";

/** Largest state.json read (it holds the data order: a number per example). */
export const MAX_STATE_BYTES = 256 * 1024 * 1024;
/** The files of a checkpoint folder; a folder holding anything else is not a checkpoint and is never replaced. */
export const CHECKPOINT_FILES = ["state.json", "tensors.safetensors"] as const;

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

/**
 * Refuses a checkpoint folder that is something else: writing a checkpoint replaces the folder, and the default one
 * is removed when training ends, so an existing folder must hold nothing but a checkpoint's files.
 */
export function checkCheckpointFolder(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new LoraDropError("OUTPUT_EXISTS", "the checkpoint folder is an existing file, not a folder; choose another --checkpoint-dir", dir);
  const other = fs.readdirSync(dir).filter((e) => !(CHECKPOINT_FILES as readonly string[]).includes(e));
  if (other.length) {
    throw new LoraDropError("OUTPUT_EXISTS",
      `the checkpoint folder exists and is not a checkpoint (it holds ${other.slice(0, 3).join(", ")}${other.length > 3 ? ", …" : ""}); a checkpoint would replace it: choose another --checkpoint-dir`, dir);
  }
}

/** Reads a checkpoint folder, or undefined when there is none. */
export function readCheckpoint(dir: string): Checkpoint | undefined {
  const stateFile = path.join(dir, "state.json");
  if (!fs.existsSync(stateFile)) return undefined;
  const text = readRegularText(stateFile, { maxBytes: MAX_STATE_BYTES, tooLargeCode: "CONFIG_INVALID", what: "a checkpoint state" });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LoraDropError("CONFIG_INVALID", `the checkpoint state is not valid JSON (${(e as Error).message})`, stateFile);
  }
  const state = parseCheckpointState(stateFile, raw);
  const index = readSafetensorsIndex(path.join(dir, "tensors.safetensors"));
  const tensors = new Map<string, Float32Array>();
  for (const name of index.tensors.keys()) tensors.set(name, readTensorF32(index, name).data);
  return { state, tensors };
}

/** Restores LoRA values and AdamW state from a checkpoint's tensors. */
export function restoreTensors(cp: Checkpoint, params: Map<string, LoraParam>, adam: AdamW, file: string, head?: Map<string, HeadParam>): void {
  const take = (key: string, size: number, moment?: "m" | "v"): Float32Array => {
    const t = cp.tensors.get(key);
    if (!t) throw new LoraDropError("TENSOR_MISSING", `the checkpoint has no tensor ${key}`, file, key);
    if (t.length !== size) throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `${key} has ${t.length} values, expected ${size}`, file, key);
    // A NaN, an Inf or a negative second moment would reach the weights in the first update: refused here.
    const bad = t.findIndex((x) => !Number.isFinite(x) || (moment === "v" && x < 0));
    if (bad >= 0) {
      throw new LoraDropError("NUMERICAL", `${key}[${bad}] is ${t[bad]}${moment === "v" ? " (a second moment must be finite and ≥ 0)" : ""}: the checkpoint is corrupt; start afresh without --resume`, file, key);
    }
    return t;
  };
  adam.step = cp.state.adamStep;
  for (const t of trainedTensors(params, head)) {
    t.data.set(take(valueKey(t.key), t.data.length));
    if (cp.tensors.has(momentKey("m", t.key))) {
      adam.moments.set(t.key, { m: Float32Array.from(take(momentKey("m", t.key), t.data.length, "m")), v: Float32Array.from(take(momentKey("v", t.key), t.data.length, "v")) });
    }
  }
}
