/**
 * "LoRA-drop: Profile LoRA outputs": picks the base model, the adapter and the dataset, runs the profile in the
 * worker under a cancellable progress notification, saves the profile JSON in the workspace's output folder and
 * opens it in the heatmap panel.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { readProfile } from "../../core/importance/profileFile";
import { parseInvocation, profileArgs } from "../commandArgs";
import { adapterDirOf, profileFileName } from "../paths";
import { Pickers } from "../pickers";
import type { Services } from "../services";
import type { CommandDeps } from "./deps";
import { precisionOf, streamingOf } from "../settings";
import { runLabel } from "../../core/torch/engineChoice";

/** Runs the command; resolves to the profile file written. */
export async function profileCommand(s: Services, deps: CommandDeps, rawArgs: readonly unknown[]): Promise<string> {
  const inv = parseInvocation(rawArgs);
  const args = profileArgs(inv.options);
  const pickers = new Pickers(s);
  const fromExplorer = inv.resources[0] ? adapterDirOf(inv.resources[0]) : undefined;
  const adapterGiven = args.adapter ?? fromExplorer;

  // The Explorer selection or an argument answers a question; the rest are asked, in a fixed order.
  const total = 3 - [args.model, adapterGiven, args.data].filter(Boolean).length;
  let asked = 0;
  const step = () => `${++asked}/${total}`;
  const model = args.model ?? (await pickers.pick("model", step()));
  const adapter = adapterGiven ?? (await pickers.pick("adapter", step()));
  const data = args.data ?? (await pickers.pick("dataset", step()));
  for (const [kind, value] of [["model", model], ["adapter", adapter], ["dataset", data]] as const) await pickers.remember(kind, value);

  const settings = s.settings(adapter);
  const outFile = path.join(s.outputFolderFor(adapter), profileFileName(adapter, new Date()));
  const device = args.device ?? settings.device;
  const result = await s.runJob(`LoRA-drop: profiling ${path.basename(adapter)} (${settings.engine} ${device})`, {
    kind: "profile",
    modelDir: model,
    adapterDir: adapter,
    dataPath: data,
    maxExamples: args.maxExamples ?? settings.maxExamples,
    maxTokens: args.maxTokens ?? settings.maxTokens,
    device,
    outFile,
    threshold: settings.threshold,
    ...streamingOf(settings),
    ...precisionOf(settings),
    ...(await s.engineFields(adapter)),
  });
  await s.recordProfile(adapter, result.profilePath);
  s.test.update((t) => (t.lastProfilePath = result.profilePath));
  s.log.info(`profile: ${result.sequences} sequences, ${result.tokens} tokens in ${result.seconds.toFixed(1)} s (${result.tokensPerSecond.toFixed(0)} tok/s) on ${runLabel(result.device)}${result.peakRssBytes ? `, peak memory ${(result.peakRssBytes / 1024 ** 3).toFixed(2)} GiB` : ""}; saved ${result.profilePath}`);
  if (args.open !== false) {
    deps.panels.open(result.profilePath, readProfile(result.profilePath), "primary");
    // What was found, in words, with where it was saved and the next step (a prune run from another command
    // reports its own outcome instead).
    s.info(`${result.summary.join(" ")} Profile saved to ${s.displayPath(result.profilePath)}.`, {
      title: "Prune…",
      run: () => vscode.commands.executeCommand("loraDrop.prune", { adapter, profile: result.profilePath }),
    });
  }
  await s.milestone("profiled");
  return result.profilePath;
}
