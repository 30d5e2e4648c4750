/**
 * `lora-drop prune`: applies LoRA-drop to an already-trained adapter from its profile. Reads the source adapter
 * (never writes to it), selects kept and shared layers, builds the pruned LoRA set, writes a new adapter folder
 * atomically and verifies it by loading it back before the folder is put in place.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import { loadHfModel } from "../models/hfModel";
import { loadAdapter, writeAdapter, type Adapter } from "../adapter/peftAdapter";
import { readProfile } from "../importance/profileFile";
import { ProfileFile } from "../importance/profileSchema";
import { SelectionRule } from "../importance/selection";
import { selectFromProfile, buildDropShare, dropShareRecord, dropConfig, type DropShareSelection, type SharedInit } from "./dropShare";
import { LoraDropRecord } from "../adapter/dropRecord";
import { RunContext } from "../util/progress";
import { checkRunPaths } from "../io/outputGuard";
import { ModelConfig } from "../models/config";
import { countLoraParams, LoraModule } from "../adapter/loraModule";
import type { AdapterFormat, PruneMode } from "../adapter/dropRecord";

/** How the kept set is chosen and what the other layers get: what `prune` and `sweep` share. */
export interface PruneRule {
  /** Cumulative-importance threshold in (0, 1] (default 0.9), unless `keep` is given. */
  threshold?: number;
  /** Keep this many layers (per module with perModule) instead of using a threshold. */
  keep?: number;
  perModule?: boolean;
  mode?: PruneMode;
}

/** What to prune and how. */
export interface PruneOptions extends PruneRule {
  adapterDir: string;
  /** A profile file of this adapter (or the profile itself). */
  profile: string | ProfileFile;
  outDir: string;
  /** The base model folder; defaults to the profile's `model.path`. */
  modelDir?: string;
  format?: AdapterFormat;
  /** Replace an existing output folder. */
  force?: boolean;
}

/** A pruned adapter built in memory: exactly the LoRA set `prune` writes, with the selection it came from. */
export interface PrunedAdapter {
  selection: DropShareSelection;
  mode: PruneMode;
  /** The pruned LoRA modules (kept pairs as they were, shared layers bound to one pair per module). */
  loras: LoraModule[];
  sharedInit: SharedInit[];
  paramsBefore: number;
  paramsAfter: number;
  /** 1 − after/before. */
  reduction: number;
}

/** What a prune did. */
export interface PruneResult extends Omit<PrunedAdapter, "mode"> {
  outDir: string;
  record: LoraDropRecord;
}

/**
 * Builds the pruned adapter in memory from the profile's importance: selects the kept and shared layers by `rule`
 * and builds the drop-and-share LoRA set. `pruneAdapter` writes what this returns; `sweep` evaluates it.
 */
export function buildPrunedAdapter(adapter: Adapter, profile: ProfileFile, rule: PruneRule, profileFile = "profile",
  onModule?: (module: string, index: number, count: number) => void): PrunedAdapter {
  const selectionRule: SelectionRule = rule.keep !== undefined ? { keep: rule.keep } : { threshold: rule.threshold ?? 0.9 };
  const mode = rule.mode ?? "share";
  const selection = selectFromProfile(profile, adapter, selectionRule, rule.perModule ?? false, profileFile);
  const built = buildDropShare(adapter, selection, mode, onModule);
  const paramsBefore = countLoraParams(adapter.loras);
  const paramsAfter = countLoraParams(built.loras);
  return { selection, mode, loras: built.loras, sharedInit: built.sharedInit, paramsBefore, paramsAfter, reduction: paramsBefore > 0 ? 1 - paramsAfter / paramsBefore : 0 };
}

/** Prunes an adapter with LoRA-drop and writes the result to a new folder. */
export async function pruneAdapter(opts: PruneOptions, ctx: RunContext = {}): Promise<PruneResult> {
  // Progress in units: reading, one per module's shared LoRA, writing and verifying.
  let total = 2;
  const report = (step: number, message: string) => ctx.progress?.report({ step, total, message });
  report(0, "reading the adapter and its profile");
  const profileFile = typeof opts.profile === "string" ? opts.profile : "profile";
  const inputs = (modelDir?: string) => [
    { path: opts.adapterDir, role: "the source adapter", option: "--adapter" },
    typeof opts.profile === "string" ? { path: opts.profile, role: "the profile", option: "--profile" } : undefined,
    modelDir !== undefined ? { path: modelDir, role: "the model folder", option: opts.modelDir !== undefined ? "--model" : "(the profile's model.path)" } : undefined,
  ];
  const out = [{ path: opts.outDir, role: "the pruned adapter", option: "--out" }];
  // Checked before the profile is read (it may be the output itself), and again with the model folder it names.
  checkRunPaths(inputs(opts.modelDir), out);
  const profile = typeof opts.profile === "string" ? readProfile(opts.profile) : opts.profile;
  checkRunPaths(inputs(opts.modelDir ?? profile.model.path), out);
  if (fs.existsSync(opts.outDir) && !opts.force) {
    throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", opts.outDir);
  }
  const config = loadHfModel(profileModelDir(profile, opts.modelDir, profileFile)).config;
  const adapter = loadAdapter(opts.adapterDir, config);
  const format = opts.format ?? "peft";
  await cancelPoint(ctx.signal);
  total = adapter.modules.length + 2;
  report(1, "selecting layers");
  const pruned = buildPrunedAdapter(adapter, profile, opts, profileFile, (m, i, n) => report(1 + i, `shared LoRA of ${m} (${i + 1}/${n})`));
  const { selection, mode } = pruned;
  ctx.log?.info(`kept ${JSON.stringify(selection.kept)}, shared ${JSON.stringify(selection.shared)}`);
  for (const s of pruned.sharedInit) ctx.log?.info(`shared ${s.module} over layers ${s.layers.join(", ")}: rank ${s.r} keeps ${(100 * s.energyKept).toFixed(1)}% of the mean update's energy`);
  const record = dropShareRecord(selection, mode, format, path.resolve(opts.adapterDir), "mean-low-rank");
  const overrides: Record<string, unknown> = mode === "drop" ? dropConfig(selection, adapter.modules, adapter.config.architecture) : {};
  await cancelPoint(ctx.signal);
  report(total - 1, "writing and verifying the new adapter");
  await writeAdapter(opts.outDir, adapter.config, pruned.loras, {
    force: opts.force, format, configOverrides: overrides, record,
    // Verified in the temporary folder, so a failed check leaves no output behind.
    beforeCommit: (tmp) => verifyWritten(tmp, config, pruned.loras),
  });
  report(total, "done");
  const { mode: _, ...rest } = pruned;
  return { ...rest, outDir: opts.outDir, record };
}

/** The base model folder of a profile: `modelDir` when given, else the one the profile recorded (which must exist). */
export function profileModelDir(profile: ProfileFile, modelDir: string | undefined, profileFile: string): string {
  const dir = modelDir ?? profile.model.path;
  if (!fs.existsSync(path.join(dir, "config.json"))) {
    throw new LoraDropError("FILE_NOT_FOUND", `the base model recorded in the profile is not there (${dir}); pass --model DIR`, profileFile, "model.path");
  }
  return dir;
}

/**
 * Loads a written adapter back and checks it carries exactly `expected`: the same modules bound to the same
 * parameters, bit-identical values (everything is written as F32) and the same trainable parameter count.
 */
export function verifyWritten(dir: string, config: ModelConfig, expected: LoraModule[]): void {
  const got = loadAdapter(dir, config);
  const fail = (msg: string): never => { throw new LoraDropError("WRITE_FAILED", `verification of the written adapter failed: ${msg}`, dir); };
  if (got.loras.length !== expected.length) fail(`${got.loras.length} LoRA modules read back, ${expected.length} written`);
  const byKey = new Map(got.loras.map((l) => [`${l.layer}.${l.module}`, l]));
  for (const e of expected) {
    const g = byKey.get(`${e.layer}.${e.module}`) ?? fail(`layer ${e.layer} ${e.module} is missing`);
    if (g.param !== e.param) fail(`layer ${e.layer} ${e.module} is bound to ${g.param}, expected ${e.param}`);
    if (g.r !== e.r || g.scale !== e.scale) fail(`layer ${e.layer} ${e.module} reads back with r=${g.r}, s=${g.scale} instead of r=${e.r}, s=${e.scale}`);
    if (!sameValues(g.A, e.A) || !sameValues(g.B, e.B)) fail(`layer ${e.layer} ${e.module} reads back with different values`);
  }
  if (countLoraParams(got.loras) !== countLoraParams(expected)) fail("the trainable parameter count differs");
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

/**
 * Lets a cancel that is waiting in the event queue (the worker's `cancel` message, the CLI's SIGINT) reach the
 * AbortSignal, then throws if it fired. Prune's work is synchronous, so without this yield a cancel sent while it
 * runs would only be seen after the output is written.
 */
async function cancelPoint(signal: AbortSignal | undefined): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  throwIfCancelled(signal, "prune");
}
