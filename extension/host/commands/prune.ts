/**
 * "LoRA-drop: Prune adapter" (Explorer context on an adapter folder or its files, and the palette), and the
 * panel's "Apply drop-and-share": find the adapter's latest profile (or offer to run one), ask for the
 * threshold (offering to evaluate every threshold's loss first, thresholdPrompt.ts), write `<name>-lora-drop-T0.90/` next to the source in the worker, reveal it, and say what was kept.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { CancelledError } from "../../core/util/errors";
import type { PruneReport } from "../testApi";
import { parseInvocation, pruneArgs } from "../commandArgs";
import { UserError } from "../errorText";
import type { PruneResult } from "../../worker/jobProtocol";
import type { PanelPrunePlan } from "../panelController";
import { adapterDirOf, formatThreshold, prunedAdapterDir } from "../paths";
import { Pickers } from "../pickers";
import { findLatestProfile } from "../profileIndex";
import type { Services } from "../services";
import type { CommandDeps } from "./deps";
import type { AdapterFormat } from "../../core/adapter/dropRecord";
import { askThreshold } from "./thresholdPrompt";
import { runSweep } from "./sweep";

/** A prune to run, with every choice made. */
interface PrunePlan extends PanelPrunePlan {
  format: AdapterFormat;
  overwrite: boolean;
}

/** Runs the command; resolves to what was written. */
export async function pruneCommand(s: Services, deps: CommandDeps, rawArgs: readonly unknown[]): Promise<PruneReport> {
  const inv = parseInvocation(rawArgs);
  const args = pruneArgs(inv.options);
  const selected = args.adapter ?? inv.resources[0];
  const adapterDir = path.resolve(selected ? adapterDirOf(selected) : await new Pickers(s).pick("adapter"));
  if (!fs.existsSync(path.join(adapterDir, "adapter_config.json"))) {
    throw new UserError(`${adapterDir} is not a PEFT adapter folder (it has no adapter_config.json).`);
  }
  const profilePath = args.profile ?? (await latestOrNewProfile(s, deps, adapterDir));
  const settings = s.settings(adapterDir);
  const mode = args.mode ?? settings.mode;
  // Prefilled with the T chosen in the panel for this adapter, else the setting.
  const threshold = args.threshold ?? (await askThreshold(deps.panels.chosenThreshold(adapterDir) ?? settings.threshold, profilePath, mode,
    async (profile) => void (await runSweep(s, profilePath, profile, mode)), (e) => s.reportError("Evaluate thresholds", e)));
  await s.milestone("thresholdChosen");
  const plan: PrunePlan = {
    adapterDir, profilePath, threshold, mode,
    outDir: prunedAdapterDir(adapterDir, threshold, mode),
    format: args.format ?? settings.outputFormat,
    overwrite: args.overwrite ?? false,
  };
  const result = await runPrune(s, plan);
  return report(s, plan, result, "command");
}

/** The panel's "Apply drop-and-share": the panel has checked that the output stays inside the workspace. */
export async function runPanelPrune(s: Services, plan: PanelPrunePlan): Promise<PruneResult> {
  const result = await runPrune(s, { ...plan, format: s.settings(plan.adapterDir).outputFormat, overwrite: false });
  report(s, plan, result, "panel");
  return result;
}

/** Confirms a replacement, runs the prune in the worker, reveals the result and reports it. */
async function runPrune(s: Services, plan: PrunePlan): Promise<PruneResult> {
  let force = plan.overwrite;
  if (!force && fs.existsSync(plan.outDir)) {
    const choice = await vscode.window.showWarningMessage(`${path.basename(plan.outDir)} already exists next to the adapter. Replace it?`, { modal: true }, "Replace");
    if (choice !== "Replace") throw new CancelledError("prune");
    force = true;
  }
  const result = await s.runJob(`LoRA-drop: pruning ${path.basename(plan.adapterDir)} (T = ${formatThreshold(plan.threshold)}, ${plan.mode})`, {
    kind: "prune",
    adapterDir: plan.adapterDir,
    profilePath: plan.profilePath,
    threshold: plan.threshold,
    mode: plan.mode,
    format: plan.format,
    outDir: plan.outDir,
    force,
  });
  void vscode.commands.executeCommand("revealInExplorer", vscode.Uri.file(result.outDir)).then(undefined, () => {
    // Outside the workspace the Explorer cannot show it; the notification names the folder anyway.
  });
  s.info(pruneSummary(result));
  await s.milestone("pruned");
  return result;
}

/** "Pruned adapter written to x: kept layers 0, 2 (2 of 4), shared 1, 3; LoRA parameters 1,024 → 640 (−37.5%)." */
export function pruneSummary(r: PruneResult): string {
  const total = r.keptLayers.length + r.sharedLayers.length;
  const reduction = r.paramsBefore > 0 ? 1 - r.paramsAfter / r.paramsBefore : 0;
  const verb = r.mode === "share" ? "shared" : "dropped";
  const list = (xs: number[]) => (xs.length ? xs.join(", ") : "none");
  return `Pruned adapter written to ${path.basename(r.outDir)}: kept layers ${list(r.keptLayers)} (${r.keptLayers.length} of ${total}), ${verb} ${list(r.sharedLayers)}; ` +
    `LoRA parameters ${r.paramsBefore.toLocaleString("en-US")} → ${r.paramsAfter.toLocaleString("en-US")} (−${(100 * reduction).toFixed(1)}%).`;
}

/** Records the prune for the test API and returns it. */
function report(s: Services, plan: PanelPrunePlan, r: PruneResult, source: "command" | "panel"): PruneReport {
  const rep: PruneReport = {
    source, adapterDir: plan.adapterDir, profilePath: plan.profilePath, outDir: r.outDir, threshold: r.threshold, mode: r.mode,
    keptLayers: r.keptLayers, sharedLayers: r.sharedLayers, paramsBefore: r.paramsBefore, paramsAfter: r.paramsAfter,
  };
  s.test.update((t) => (t.lastPrune = rep));
  return rep;
}

/** The adapter's latest profile: recorded by the profile command, or the newest in the output folders; else offer to run one. */
async function latestOrNewProfile(s: Services, deps: CommandDeps, adapterDir: string): Promise<string> {
  const recorded = s.recordedProfile(adapterDir);
  const found = recorded && fs.existsSync(recorded) ? recorded : findLatestProfile(s.allOutputFolders(), adapterDir);
  if (found) {
    s.log.info(`prune: using the profile ${found}`);
    return found;
  }
  const choice = await vscode.window.showInformationMessage(
    `No profile of ${path.basename(adapterDir)} was found. LoRA-drop needs one to know which layers matter. Profile it now?`,
    { modal: true },
    "Profile now",
  );
  if (choice !== "Profile now") throw new CancelledError("prune");
  return deps.profile({ adapter: adapterDir, open: false });
}
