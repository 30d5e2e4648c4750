/**
 * `lora-drop profile`: runs the profiler and writes the profile JSON.
 */
import { Command, Option } from "commander";
import * as path from "node:path";
import { intArg, memoryBudgetOption, precisionOption, thresholdArg, threadsArg } from "./args";
import { addEngineOptions, engineArgs } from "./engineArgs";
import { LoraDropError } from "../core/util/errors";
import { profileToFile } from "../core/importance/profile";
import { CRITERIA, ProfileFile } from "../core/importance/profileSchema";
import { rankByImportance } from "../core/importance/selection";
import { profileRunLabel } from "../core/importance/profileSchema";
import { terminalContext, pct } from "./terminal";
import { formatBytes, StreamChoice } from "../core/stream/memoryBudget";
import { maxRssBytes } from "../core/stream/peakMemory";
import { profileConclusion } from "../viewModel/profileSummary";
import type { Precision } from "../core/quant/precision";

/** The summary table printed after a profile: layers by importance with the cumulative share. */
export function summaryTable(p: ProfileFile, top = 0): string {
  const order = rankByImportance(p.importance.per_layer);
  // Ablation's raw value is a loss increase, worth seeing beside its share (it may be negative).
  const ablation = p.criterion === "ablation";
  const lines = [`rank  layer  importance  cumulative${ablation ? "  loss increase" : ""}`];
  let cum = 0;
  const shown = top > 0 ? order.slice(0, top) : order;
  shown.forEach((i, rank) => {
    cum += p.importance.per_layer[i]!;
    const raw = ablation ? `  ${p.importance.per_layer_raw[i]!.toExponential(3).padStart(13)}` : "";
    lines.push(`${String(rank + 1).padStart(4)}  ${String(p.layers[i]).padStart(5)}  ${pct(p.importance.per_layer[i]!).padStart(10)}  ${pct(cum).padStart(10)}${raw}`);
  });
  return lines.join("\n");
}

/** The folder the printed prune command proposes: the adapter's name with the threshold, beside it. */
export function prunedName(adapter: string, threshold: number): string {
  const trimmed = adapter.replace(/[\\/]+$/, "");
  return path.join(path.dirname(trimmed), `${path.basename(trimmed)}-lora-drop-T${threshold.toFixed(2)}`);
}

/** Registers the command. */
export function registerProfile(program: Command): void {
  const cmd = program
    .command("profile")
    .description("measure each layer's LoRA output magnitude on a dataset (LoRA-drop importance)")
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .requiredOption("--adapter <dir>", "PEFT LoRA adapter folder")
    .requiredOption("--data <file>", "dataset: .jsonl (text | prompt+completion | input_ids) or .txt")
    .requiredOption("--out <file>", "where to write the profile JSON")
    .option("--max-examples <n>", "examples to profile", intArg, 64)
    .option("--max-tokens <n>", "tokens per example at most", intArg, 128)
    .option("--batch-size <n>", "sequences per run", intArg, 8)
    .addOption(new Option("--criterion <c>", "importance criterion (ablation: the loss increase when a layer's LoRA is removed)").choices([...CRITERIA]).default("output"))
    .option("--per-module", "with --criterion ablation: also remove each module of each layer on its own (per-module importance)");
  addEngineOptions(cmd)
    .option("--threads <n>", "CPU threads", threadsArg)
    .addOption(precisionOption())
    .addOption(memoryBudgetOption())
    .addOption(new Option("--stream <mode>", "onnx engine: run the model block by block from its files (auto: when it does not fit the budget)").choices(["auto", "on", "off"]).default("auto"))
    .option("--threshold <t>", "the threshold T whose selection the closing summary describes", thresholdArg, 0.9)
    .option("--force", "overwrite an existing profile file")
    .option("--quiet", "no progress output")
    .option("--verbose", "log details (execution provider, timings)")
    .action(async (o) => {
      if (o.perModule && o.criterion !== "ablation") {
        throw new LoraDropError("INVALID_ARGUMENT", "--per-module applies to --criterion ablation only (every other criterion measures each module anyway)");
      }
      const ctx = terminalContext("profile", o);
      try {
        const profile = await profileToFile({
          modelDir: o.model, adapterDir: o.adapter, dataPath: o.data, maxExamples: o.maxExamples, maxTokens: o.maxTokens,
          batchSize: o.batchSize, ...engineArgs(o), threads: o.threads, criterion: o.criterion, ablationPerModule: o.perModule === true,
          memoryBudget: o.memoryBudget, stream: o.stream as StreamChoice, precision: o.precision as Precision,
        }, o.out, o.force === true, ctx);
        ctx.done();
        if (!o.quiet) {
          process.stdout.write(`${summaryTable(profile)}\n`);
          if (profile.ablation) process.stdout.write(`full adapter loss ${profile.ablation.full_loss.toFixed(5)}; importance counts only the loss increases (a layer whose removal lowers the loss gets 0)\n`);
          process.stdout.write(`ran on: ${profileRunLabel(profile)}${profile.precision ? `, ${profile.precision}` : ""}; ${profile.sequences.length} sequences, ${profile.timing.tokens} tokens, ${profile.timing.tokens_per_second.toFixed(0)} tok/s\n`);
          if (profile.timing.peak_rss_bytes) process.stdout.write(`peak memory: ${formatBytes(profile.timing.peak_rss_bytes)} sampled RSS, ${formatBytes(maxRssBytes())} max RSS of the process\n`);
          // The conclusion last, where the eye lands after a long table.
          process.stdout.write(`${profileConclusion(profile, o.threshold).join("\n")}\n`);
          process.stdout.write(`wrote ${o.out}\n`);
          process.stdout.write(`next: npx lora-drop prune --adapter ${o.adapter} --profile ${o.out} --out ${prunedName(o.adapter, o.threshold)}${o.threshold === 0.9 ? "" : ` --threshold ${o.threshold}`}\n`);
        }
      } finally {
        ctx.done();
      }
    });
}
