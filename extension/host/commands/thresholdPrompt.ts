/**
 * The prune command's threshold prompt. While typing T it previews what T keeps and, when the profile has a sweep
 * beside it, the loss measured for the adapter that T builds. Without a sweep it offers "Evaluate thresholds" (a
 * button on the prompt): the sweep runs with its progress and cancel, and the prompt comes back with the losses.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import { CancelledError, isLoraDropError } from "../../core/util/errors";
import { readProfile } from "../../core/importance/profileFile";
import type { ProfileFile } from "../../core/importance/profileSchema";
import type { PruneMode } from "../../core/adapter/dropRecord";
import { readSweep, sweepPathFor } from "../../core/sweep/sweepFile";
import type { SweepFile } from "../../core/sweep/sweepSchema";
import { selectForProfile, countParameters, keptPositions } from "../../viewModel/layerSelection";
import { lossText, measuredPointIndex, sweepMatchesProfile } from "../../viewModel/sweepChart";
import { parseThresholdInput } from "../commandArgs";
import { formatThreshold } from "../paths";
import { UserError } from "../errorText";

/** Profiles up to this size are read in the extension host to preview the kept layers while typing T. */
const PREVIEW_MAX_BYTES = 32 * 2 ** 20;

/** The tooltip of the prompt's button, which tests press by it. */
export const EVALUATE_BUTTON_TOOLTIP = "Evaluate thresholds: measure the loss of the adapter every T builds, before choosing";

/**
 * Asks for T, prefilled with `initial`. `evaluate` runs the sweep of the profile in `mode` (the button); a cancel
 * or failure there brings the prompt back as it was.
 */
export async function askThreshold(initial: number, profilePath: string, mode: PruneMode, evaluate: (profile: ProfileFile) => Promise<void>, report: (e: unknown) => void): Promise<number> {
  let value = formatThreshold(initial);
  for (;;) {
    const profile = readSmallProfile(profilePath);
    const sweep = profile ? sweepOf(profilePath, profile, mode) : undefined;
    const answer = await prompt(value, profile, sweep, mode, profile !== undefined && sweep === undefined);
    if (answer.kind === "cancel") throw new CancelledError("prune");
    if (answer.kind === "value") {
      const t = parseThresholdInput(answer.value);
      if (typeof t === "string") throw new UserError(t);
      return t;
    }
    value = answer.value;
    try {
      await evaluate(profile!);
    } catch (e) {
      // Back to the prompt either way: the user can still choose T from the importance alone.
      if (!(isLoraDropError(e) && e.code === "CANCELLED")) report(e);
    }
  }
}

type Answer = { kind: "value"; value: string } | { kind: "evaluate"; value: string } | { kind: "cancel" };

function prompt(value: string, profile: ProfileFile | undefined, sweep: SweepFile | undefined, mode: PruneMode, offerEvaluate: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const box = vscode.window.createInputBox();
    let answered = false;
    const answer = (a: Answer) => {
      if (answered) return;
      answered = true;
      resolve(a);
      box.hide();
    };
    box.title = "LoRA-drop: threshold";
    box.prompt = "Cumulative importance to keep, in (0, 1]: layers are kept, most important first, until their importance adds up to T." +
      (offerEvaluate ? " Not sure? The graph button measures the loss at every T first." : "");
    box.value = value;
    box.ignoreFocusOut = true;
    if (offerEvaluate) box.buttons = [{ iconPath: new vscode.ThemeIcon("graph-line"), tooltip: EVALUATE_BUTTON_TOOLTIP }];
    const validate = (v: string) => {
      const t = parseThresholdInput(v);
      box.validationMessage = typeof t === "string" ? t : profile ? { message: preview(profile, sweep, mode, t), severity: vscode.InputBoxValidationSeverity.Info } : undefined;
    };
    validate(value);
    box.onDidChangeValue(validate);
    box.onDidAccept(() => {
      if (typeof parseThresholdInput(box.value) !== "string") answer({ kind: "value", value: box.value });
    });
    box.onDidTriggerButton(() => answer({ kind: "evaluate", value: box.value }));
    box.onDidHide(() => {
      answer({ kind: "cancel" });
      box.dispose();
    });
    box.show();
  });
}

/** What T keeps, by the engine's selection, and the loss the sweep measured for it. */
export function preview(p: ProfileFile, sweep: SweepFile | undefined, mode: PruneMode, t: number): string {
  const sel = selectForProfile(p, t);
  const c = countParameters(p.adapter.params, p.modules, sel.kept, mode);
  const base = `Keeps layers ${keptPositions(sel.kept).map((i) => p.layers[i]).join(", ")} (${sel.keptCount} of ${sel.order.length} with a LoRA); LoRA parameters −${(100 * c.reduction).toFixed(1)}%`;
  const at = sweep ? measuredPointIndex(sweep, p, t) : undefined;
  if (!sweep || at === undefined) return `${base}.`;
  return `${base}; measured loss ${lossText(sweep.points[at]!.loss)} (full adapter ${lossText(sweep.full_loss)}, base model ${lossText(sweep.base_loss)}).`;
}

function readSmallProfile(file: string): ProfileFile | undefined {
  try {
    return fs.statSync(file).size <= PREVIEW_MAX_BYTES ? readProfile(file) : undefined;
  } catch {
    // The prune itself reports a bad profile with its file and field; the preview is optional.
    return undefined;
  }
}

/** The sweep beside the profile in this mode, when it was measured from this very profile run. */
function sweepOf(profilePath: string, profile: ProfileFile, mode: PruneMode): SweepFile | undefined {
  const file = sweepPathFor(profilePath, mode);
  try {
    const sweep = fs.existsSync(file) ? readSweep(file) : undefined;
    return sweep && sweepMatchesProfile(sweep, profile) ? sweep : undefined;
  } catch {
    return undefined;
  }
}
