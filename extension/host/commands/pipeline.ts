/**
 * "LoRA-drop: Run LoRA-drop pipeline": picks the base model and the dataset and runs the whole method in the
 * worker (sample α of the data, short LoRA training, output profile, selection at T, fine-tune with the kept +
 * shared structure, report), with the loss curves in the panel; then opens the profile and the report.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { isLoraDropError } from "../../core/util/errors";
import { readProfile } from "../../core/importance/profileFile";
import type { JobResults } from "../../worker/jobProtocol";
import { parseInvocation, pipelineArgs } from "../commandArgs";
import { Pickers } from "../pickers";
import { timeStamp } from "../paths";
import type { Services } from "../services";
import type { CommandDeps } from "./deps";
import { streamingOf } from "../settings";
import { ProfilePanel } from "../panel";

/** Runs the command; resolves to the pipeline's output folder. */
export async function pipelineCommand(s: Services, deps: CommandDeps, rawArgs: readonly unknown[]): Promise<string> {
  const inv = parseInvocation(rawArgs);
  const args = pipelineArgs(inv.options);
  const pickers = new Pickers(s);
  const model = args.model ?? (await pickers.pick("model", "1/2"));
  const data = args.data ?? (await pickers.pick("dataset", "2/2"));
  const settings = s.settings(data);
  const outDir = args.out ?? path.join(s.outputFolderFor(data), "pipeline", `${path.basename(model)}-${timeStamp(new Date())}`);
  const panel = deps.panels.show();
  const curve = () => (ProfilePanel.current ?? panel).controller;
  let result: JobResults["pipeline"];
  try {
    result = await s.runJob(
      `LoRA-drop pipeline on ${path.basename(model)} (α = ${settings.sampleFraction}, T = ${settings.threshold}; ${settings.engine} ${settings.device})`,
      {
        kind: "pipeline", modelDir: model, dataPath: data, outDir,
        threshold: args.threshold ?? settings.threshold, sampleFraction: settings.sampleFraction,
        r: settings.train.rank, loraAlpha: settings.train.loraAlpha, targets: settings.train.targetModules,
        lr: settings.train.learningRate, batchSize: settings.train.batchSize, device: settings.device, maxTokens: settings.maxTokens,
        force: args.overwrite ?? false, ...streamingOf(settings),
        ...(await s.engineFields(data)),
      },
      // Three trainings run in turn (sample, LoRA-drop, LoRA); each restarts the panel's loss curve.
      { trainStep: (step) => curve().trainStep(step) },
    );
  } catch (e) {
    const cancelled = isLoraDropError(e) && e.code === "CANCELLED";
    curve().trainDone(cancelled ? "cancelled" : "failed", cancelled ? undefined : (e as Error).message?.slice(0, 2000));
    throw e;
  }
  curve().trainDone("completed");
  s.test.update((t) => (t.lastPipelineOutDir = result.outDir));
  await s.milestone("trained");
  if (result.profilePath) {
    deps.panels.open(result.profilePath, readProfile(result.profilePath), "primary");
    s.test.update((t) => (t.lastProfilePath = result.profilePath));
    await s.milestone("profiled");
  }
  const report = result.reportPath;
  s.info(`LoRA-drop pipeline finished: ${result.summary}`, ...(report ? [{ title: "Open report", run: () => vscode.window.showTextDocument(vscode.Uri.file(report)) }] : []));
  void vscode.commands.executeCommand("revealInExplorer", vscode.Uri.file(result.outDir)).then(undefined, () => undefined);
  return result.outDir;
}
