/**
 * "Evaluate thresholds": the sweep of a profile's thresholds run in the worker, from the panel's button or the
 * prune command's threshold prompt. It measures on the data the profile was made on (its first examples, as many
 * and as long as the profile took), with the engine, device and memory settings, and writes the sweep beside the
 * profile.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ProfileFile } from "../../core/importance/profileSchema";
import type { PruneMode } from "../../core/adapter/dropRecord";
import { sweepPathFor } from "../../core/sweep/sweepFile";
import type { SweepJob } from "../../worker/jobProtocol";
import { UserError } from "../errorText";
import type { PanelSweepPlan, SweepHooks } from "../panelSweeps";
import type { Services } from "../services";
import { precisionOf, streamingOf } from "../settings";
import { runLabel } from "../../core/torch/engineChoice";

/** The worker job of a sweep of `profile` in `mode`, written to `outFile` (replacing an older sweep there). */
export async function sweepJob(s: Services, profilePath: string, profile: ProfileFile, mode: PruneMode, outFile: string): Promise<SweepJob> {
  const missing = [["base model", profile.model.path], ["adapter", profile.adapter.path], ["dataset", profile.settings.data]].find(([, p]) => !fs.existsSync(p!));
  if (missing) {
    throw new UserError(`The ${missing[0]} the profile was made from is no longer at ${missing[1]}. Run "lora-drop sweep" from a terminal with the files where they are now.`);
  }
  const settings = s.settings(profile.adapter.path);
  return {
    kind: "sweep", modelDir: profile.model.path, adapterDir: profile.adapter.path, profilePath, dataPath: profile.settings.data, mode,
    maxExamples: Math.max(1, profile.settings.max_examples), maxTokens: Math.max(1, profile.settings.max_tokens), device: settings.device,
    outFile, force: true, ...streamingOf(settings), ...precisionOf(settings), ...(await s.engineFields(profile.adapter.path)),
  };
}

/** Runs a sweep under a cancellable notification (and the caller's signal); resolves to the sweep file. */
export async function runSweep(s: Services, profilePath: string, profile: ProfileFile, mode: PruneMode, hooks: Partial<SweepHooks> = {}): Promise<string> {
  const outFile = sweepPathFor(profilePath, mode);
  const job = await sweepJob(s, profilePath, profile, mode, outFile);
  const result = await s.runJob(`LoRA-drop: evaluating the thresholds of ${path.basename(profilePath)} (${mode}; ${job.engine} ${job.device})`, job, {
    ...(hooks.signal ? { signal: hooks.signal } : {}),
    ...(hooks.progress ? { progress: (u) => hooks.progress!(u.total > 0 ? u.step / u.total : 0, u.message ?? "") } : {}),
  });
  s.log.info(`evaluate thresholds: ${result.points} thresholds measured in ${result.seconds.toFixed(1)} s on ${runLabel(result.device)}; saved ${result.sweepPath}`);
  s.test.update((t) => (t.lastSweepPath = result.sweepPath));
  return result.sweepPath;
}

/** The panel's "Evaluate thresholds": the panel has decided where the sweep goes. */
export function runPanelSweep(s: Services, plan: PanelSweepPlan, hooks: SweepHooks): Promise<string> {
  return runSweep(s, plan.profilePath, plan.profile, plan.mode, hooks);
}
