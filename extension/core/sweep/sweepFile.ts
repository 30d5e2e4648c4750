/**
 * Reading and writing sweep files: validated on read (sweepSchema.ts) so a hand-edited or foreign file gives one
 * clear error, written atomically, and never over one of the sweep's own inputs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "../util/errors";
import { writeFileAtomic } from "../io/atomicWrite";
import { checkRunPaths } from "../io/outputGuard";
import { readRegularText } from "../io/regularFile";
import type { PruneMode } from "../adapter/dropRecord";
import { sweepProblem, type SweepFile } from "./sweepSchema";

/** Largest sweep file read. */
export const MAX_SWEEP_BYTES = 64 * 1024 * 1024;

/**
 * Where the panel keeps the sweep of a profile: beside it, `<name>.sweep.json` for "share" (the paper's method) and
 * `<name>.sweep-drop.json` for "drop", `<name>` being the profile's file name without `.json`.
 */
export function sweepPathFor(profilePath: string, mode: PruneMode): string {
  const base = path.basename(profilePath).replace(/\.json$/i, "");
  return path.join(path.dirname(profilePath), `${base}.${mode === "share" ? "sweep" : "sweep-drop"}.json`);
}

/** Checks a parsed value; returns it typed or throws SWEEP_INVALID naming the file and field. */
export function validateSweep(raw: unknown, file = "sweep"): SweepFile {
  const problem = sweepProblem(raw);
  if (problem) throw new LoraDropError("SWEEP_INVALID", problem.message, file, problem.field || undefined);
  return raw as SweepFile;
}

/** Reads and validates a sweep file (a regular file, at most MAX_SWEEP_BYTES). */
export function readSweep(file: string): SweepFile {
  const text = readRegularText(file, { maxBytes: MAX_SWEEP_BYTES, tooLargeCode: "SWEEP_INVALID", what: "a sweep" });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LoraDropError("SWEEP_INVALID", `not valid JSON (${(e as Error).message})`, file);
  }
  return validateSweep(raw, file);
}

/** The inputs of a sweep, none of which its output may replace. */
export interface SweepInputs {
  files: string[];
  folders: string[];
}

/**
 * Throws unless `file` may receive a sweep: never one of the sweep's inputs (the profile, the data, or anything
 * inside the model or adapter folder), and an existing file only with `force`. Callers check before measuring too.
 */
export function checkSweepOutput(file: string, inputs: SweepInputs, force = false): void {
  checkRunPaths([
    ...inputs.files.map((f) => ({ path: f, role: "an input file of the sweep", option: "--profile/--data" })),
    ...inputs.folders.map((d) => ({ path: d, role: "an input folder of the sweep", option: "--model/--adapter" })),
  ], [{ path: file, role: "the sweep file", option: "--out" }]);
  if (fs.existsSync(file) && !force) throw new LoraDropError("OUTPUT_EXISTS", "the sweep file already exists; choose another --out or pass --force", file);
}

/** Writes a sweep atomically, after checkSweepOutput. */
export function writeSweep(file: string, sweep: SweepFile, inputs: SweepInputs, force = false): void {
  checkSweepOutput(file, inputs, force);
  validateSweep(sweep, file);
  writeFileAtomic(file, JSON.stringify(sweep, null, 1));
}
