/**
 * "LoRA-drop: Train LoRA adapter": picks the base model and the dataset, then a new LoRA (settings
 * `loraDrop.train.*`) or an existing adapter to continue, trains in the worker with the loss curve live in the
 * panel, and writes the adapter under the output folder's `adapters/`.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { CancelledError, isLoraDropError } from "../../core/util/errors";
import type { TrainReport } from "../testApi";
import { parseInvocation, trainArgs } from "../commandArgs";
import { ProfilePanel } from "../panel";
import { Pickers } from "../pickers";
import { slug, timeStamp } from "../paths";
import type { Services } from "../services";
import type { CommandDeps } from "./deps";
import { streamingOf, type Settings } from "../settings";
import { runLabel } from "../../core/torch/engineChoice";

/** Runs the command; resolves to what was trained. */
export async function trainCommand(s: Services, deps: CommandDeps, rawArgs: readonly unknown[]): Promise<TrainReport> {
  const inv = parseInvocation(rawArgs);
  const args = trainArgs(inv.options);
  const pickers = new Pickers(s);
  const model = args.model ?? (await pickers.pick("model", "1/3"));
  const data = args.data ?? (await pickers.pick("dataset", "2/3"));
  const settings = s.settings(data);
  const adapter = args.adapter ?? (args.model && args.data ? undefined : await pickStart(s, settings));
  const name = adapter ? `${slug(path.basename(adapter))}-continued` : `${slug(path.basename(model))}-lora`;
  const stamp = timeStamp(new Date());
  const adaptersDir = path.join(s.outputFolderFor(data), "adapters");
  const outDir = args.out ?? path.join(adaptersDir, `${name}-${stamp}`);

  const panel = deps.panels.show();
  try {
    const result = await s.runJob(
      `LoRA-drop: training ${adapter ? path.basename(adapter) : `a new LoRA on ${path.basename(model)}`} (${settings.engine} ${settings.device})`,
      {
        kind: "train", modelDir: model, dataPath: data, outDir, ...(adapter ? { initAdapterDir: adapter } : {}),
        r: settings.train.rank, loraAlpha: settings.train.loraAlpha, targets: settings.train.targetModules, epochs: args.epochs ?? settings.train.epochs,
        lr: settings.train.learningRate, batchSize: settings.train.batchSize, device: settings.device, maxTokens: settings.maxTokens,
        logFile: path.join(path.dirname(outDir), `${path.basename(outDir)}.train.jsonl`), force: args.overwrite ?? false, ...streamingOf(settings),
        ...(await s.engineFields(data)),
      },
      // Closed and reopened during the run: the steps go to the panel on screen.
      { trainStep: (step) => (ProfilePanel.current ?? panel).controller.trainStep(step) },
    );
    (ProfilePanel.current ?? panel).controller.trainDone("completed");
    const report: TrainReport = { outDir: result.outDir, steps: result.steps, finalLoss: result.finalLoss };
    s.test.update((t) => (t.lastTrain = report));
    await s.milestone("trained");
    void vscode.commands.executeCommand("revealInExplorer", vscode.Uri.file(result.outDir)).then(undefined, () => undefined);
    s.info(
      `Trained adapter written to ${path.basename(result.outDir)}: ${result.steps} steps, final loss ${result.finalLoss.toFixed(4)}, ${result.trainableParams.toLocaleString("en-US")} LoRA parameters (${result.seconds.toFixed(0)} s on ${runLabel(result.device)}).`,
      { title: "Profile it", run: () => vscode.commands.executeCommand("loraDrop.profile", { model, adapter: result.outDir, data }) },
    );
    return report;
  } catch (e) {
    const cancelled = isLoraDropError(e) && e.code === "CANCELLED";
    (ProfilePanel.current ?? panel).controller.trainDone(cancelled ? "cancelled" : "failed", cancelled ? undefined : (e as Error).message?.slice(0, 2000));
    throw e;
  }
}

/** "New LoRA" or one of the workspace's adapters to continue from. */
async function pickStart(s: Services, settings: Settings): Promise<string | undefined> {
  const t = settings.train;
  type Item = vscode.QuickPickItem & { adapter?: string; browse?: boolean };
  const items: Item[] = [
    { label: "$(add) New LoRA adapter", description: `r ${t.rank}, alpha ${t.loraAlpha}, on ${t.targetModules.join(", ")}` },
    { label: "$(folder-opened) Continue an existing adapter…", browse: true },
  ];
  const chosen = await vscode.window.showQuickPick(items, { title: "LoRA-drop: Train (3/3)", placeHolder: "Start from a new LoRA or continue an adapter", ignoreFocusOut: true });
  if (!chosen) throw new CancelledError("training");
  return chosen.browse ? new Pickers(s).pick("adapter") : undefined;
}
