/**
 * The scalar part of a training checkpoint (state.json), checked field by field when read back: a resumed run takes
 * every number in it as given (the step to start from, the data order, the random generators' states), so a field
 * that is null, of the wrong type or out of range is a CONFIG_INVALID error naming the file and the field, never a
 * TypeError or a run that silently continues from garbage.
 */
import { LoraDropError, describeValue } from "../util/errors";

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

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= lo && v <= hi;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Validates a parsed state.json; `file` is named in every error. */
export function parseCheckpointState(file: string, raw: unknown): CheckpointState {
  const bad = (field: string, what: string, v: unknown): never => {
    throw new LoraDropError("CONFIG_INVALID", `checkpoint field ${field} must be ${what}, got ${describeValue(v)}; the checkpoint is damaged: start afresh without --resume`, file, field);
  };
  if (!isObject(raw)) return bad("(root)", "an object", raw);
  const r = raw;
  if (r.version !== CHECKPOINT_VERSION) {
    throw new LoraDropError("CONFIG_INVALID", `checkpoint version ${describeValue(r.version)} is not supported (this version reads ${CHECKPOINT_VERSION})`, file, "version");
  }
  const MAX = Number.MAX_SAFE_INTEGER;
  if (!isInt(r.totalSteps, 1, MAX)) bad("totalSteps", "a positive integer", r.totalSteps);
  const totalSteps = r.totalSteps as number;
  if (!isInt(r.step, 0, totalSteps)) bad("step", `an integer from 0 to totalSteps (${totalSteps})`, r.step);
  if (!isObject(r.fingerprint)) bad("fingerprint", "an object", r.fingerprint);
  for (const k of ["dataRng", "dropoutRng"]) if (!isInt(r[k], 0, 2 ** 32 - 1)) bad(k, "a 32-bit unsigned integer (a generator state)", r[k]);
  if (!isInt(r.epoch, 0, MAX)) bad("epoch", "a non-negative integer", r.epoch);
  const order = r.order;
  if (!Array.isArray(order) || order.length === 0) return bad("order", "a non-empty list of example indices", order);
  const seen = new Uint8Array(order.length);
  for (const i of order) {
    if (!isInt(i, 0, order.length - 1) || seen[i]) bad("order", `a permutation of 0…${order.length - 1}`, i);
    seen[i as number] = 1;
  }
  if (!isInt(r.position, 0, order.length)) bad("position", `an integer from 0 to the order's length (${order.length})`, r.position);
  if (!isInt(r.adamStep, 0, MAX) || r.adamStep !== r.step) bad("adamStep", `the number of optimiser steps taken (step ${describeValue(r.step)})`, r.adamStep);
  if (!Array.isArray(r.losses)) return bad("losses", "a list", r.losses);
  r.losses.forEach((l, i) => {
    if (!isObject(l) || !isInt(l.step, 1, totalSteps) || typeof l.loss !== "number" || !Number.isFinite(l.loss) || typeof l.lr !== "number" || !Number.isFinite(l.lr) || l.lr < 0) {
      bad(`losses[${i}]`, "{step, loss, lr} with a step in range and finite numbers", l);
    }
  });
  if (!isInt(r.tokens, 0, MAX)) bad("tokens", "a non-negative integer", r.tokens);
  return r as unknown as CheckpointState;
}
