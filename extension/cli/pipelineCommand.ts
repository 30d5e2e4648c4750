/**
 * `lora-drop pipeline`: LoRA-drop from start to finish (sample, short LoRA, profile, select, fine-tune with the
 * kept + shared structure, compare with full LoRA, report).
 */
import { Command, Option } from "commander";
import { runPipelineOnNode, isNodeOutcome, PipelineEvent, PIPELINE_PHASES } from "../core/pipeline/pipeline";
import { PipelineReport, RunSummary, describeSets } from "../core/pipeline/report";
import { rankByImportance } from "../core/importance/selection";
import { layersFor } from "../core/adapter/dropRecord";
import { terminalContext, terminalProgress, pct } from "./terminal";
import { intArg, floatArg, formerOption, nonNegIntArg, thresholdArg, threadsArg } from "./args";
import { addEngineOptions, addLaunchOptions, engineArgs, launchArgs, nodeDoneLine } from "./engineArgs";
import { runLabel } from "../core/torch/engineChoice";
import { Progress } from "../core/util/progress";

/** What a user needs to see after a run: importance, kept/shared, parameter reduction, losses, paths. */
export function pipelineSummary(r: PipelineReport): string {
  const lines: string[] = [];
  const num = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(4));
  lines.push(`layer importance (output of the ${r.sample_run.steps}-step LoRA on ${r.data.sample} sampled examples):`);
  const perLayer = !r.selection.per_module;
  lines.push(`rank  layer  importance  cumulative${perLayer ? "  status" : ""}`);
  let cum = 0;
  rankByImportance(r.importance.per_layer).forEach((p, rank) => {
    const layer = r.importance.layers[p]!;
    cum += r.importance.per_layer[p]!;
    const status = !perLayer ? "" : layersFor(r.selection.kept, "").includes(layer) ? "  kept" : layersFor(r.selection.shared, "").includes(layer) ? "  shared" : "";
    lines.push(`${String(rank + 1).padStart(4)}  ${String(layer).padStart(5)}  ${pct(r.importance.per_layer[p]!).padStart(10)}  ${pct(cum).padStart(10)}${status}`);
  });
  lines.push(`kept: ${describeSets(r.selection.kept)}`);
  lines.push(`shared (one LoRA per module): ${describeSets(r.selection.shared)}`);
  lines.push(`trainable LoRA parameters: full LoRA ${r.params.lora.toLocaleString("en-US")}, LoRA-drop ${r.params.lora_drop.toLocaleString("en-US")} (${pct(r.params.reduction)} fewer)`);
  lines.push("");
  lines.push(`losses after ${r.lora_drop.steps} steps on the same ${r.data.train} examples:   full LoRA   LoRA-drop`);
  const row = (label: string, f: (s: RunSummary) => number | null) =>
    lines.push(`  ${label.padEnd(40)} ${(r.lora ? num(f(r.lora)) : "not run").padStart(9)}   ${num(f(r.lora_drop)).padStart(9)}`);
  row("mean loss, last 10% of steps", (s) => s.mean_last_loss);
  row("loss on the training set", (s) => s.train_loss);
  row(`loss on the held-out split (${r.data.eval} ex.)`, (s) => s.eval_loss);
  lines.push(`  ${"base model without LoRA, held-out".padEnd(40)} ${num(r.base_eval_loss).padStart(9)}`);
  if (r.lora_drop.eval_metrics) {
    // Sequence classifiers: the held-out scores GLUE reports.
    row("held-out accuracy", (s) => s.eval_metrics?.accuracy ?? null);
    if (r.lora_drop.eval_metrics.mcc !== undefined) row("held-out Matthews correlation", (s) => s.eval_metrics?.mcc ?? null);
    lines.push(`  ${"base model without LoRA, accuracy".padEnd(40)} ${num(r.base_eval_metrics?.accuracy ?? null).padStart(9)}`);
  }
  lines.push("");
  lines.push(`ran on: ${runLabel(r.device)}; ${r.seconds.toFixed(0)} s`);
  for (const [k, v] of Object.entries(r.files)) lines.push(`${k.replace(/_/g, " ")}: ${v}`);
  return lines.join("\n");
}

/** Registers the command. */
export function registerPipeline(program: Command): void {
  const cmd = program
    .command("pipeline")
    .description("LoRA-drop end to end: sample, short LoRA, profile, select, fine-tune with shared layers, compare, report")
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .requiredOption("--data <file>", "training data: .jsonl (text | prompt+completion | input_ids) or .txt")
    .requiredOption("--out <dir>", "new output folder (adapter/, profile.json, report.json, report.md, …)")
    .option("--sample-fraction <a>", "fraction α of the training data sampled for the short run and the profile (default 0.1)", floatArg)
    .addOption(formerOption("--alpha <a>", floatArg))
    .option("--threshold <t>", "keep layers until their cumulative importance reaches t", thresholdArg, 0.9)
    .option("--keep <n>", "keep the n most important layers instead", intArg)
    .option("--per-module", "select separately for each target module")
    .option("--stratify-by <field>", "sample by this JSONL field (default: label for sequence classifiers, else by token length)")
    .option("--eval-fraction <f>", "fraction held out for the evaluation loss", floatArg, 0.1)
    .option("--r <n>", "LoRA rank", intArg, 8)
    .option("--lora-alpha <a>", "LoRA alpha (scale = alpha / r)", floatArg, 16)
    .option("--targets <list>", "comma-separated target modules (default: q_proj,v_proj; c_attn for gpt2; query,value for roberta and bert)", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .option("--steps <n>", "optimiser steps of each final fine-tune (default: one epoch)", intArg)
    .option("--sample-steps <n>", "optimiser steps of the short run on the sample (default: one epoch of it)", intArg)
    .option("--lr <lr>", "peak learning rate", floatArg, 2e-4)
    .option("--batch-size <n>", "sequences per step", intArg, 8)
    .option("--max-tokens <n>", "tokens per example at most (default 512)", intArg)
    .addOption(formerOption("--max-length <n>", intArg))
    .option("--warmup-steps <n>", "linear warm-up steps", nonNegIntArg, 0)
    .option("--seed <n>", "seed of the sample, the split, the LoRA init and the data order", nonNegIntArg, 42)
    .option("--profile-examples <n>", "sampled examples profiled at most", intArg, 64)
    .option("--no-compare", "skip the full-LoRA run used for the comparison");
  addLaunchOptions(addEngineOptions(cmd))
    .option("--threads <n>", "CPU threads (per process)", threadsArg)
    .option("--force", "replace the output folder if it exists")
    .option("--quiet", "print only errors")
    .option("--verbose", "log details")
    .addOption(new Option("--json", "print the report as JSON instead of the summary"))
    .action(async (o) => {
      const ctx = terminalContext("pipeline", { quiet: true, verbose: o.verbose });
      let bar: Progress & { stop(): void } = terminalProgress("", true);
      const onEvent = (e: PipelineEvent) => {
        if (e.message === undefined || o.quiet) return;
        bar.stop();
        process.stderr.write(`[${PIPELINE_PHASES.indexOf(e.phase) + 1}/${PIPELINE_PHASES.length}] ${e.phase}: ${e.message}\n`);
        bar = terminalProgress(e.phase, false);
      };
      try {
        const report = await runPipelineOnNode({
          modelDir: o.model, dataPath: o.data, outDir: o.out, sampleFraction: o.sampleFraction ?? o.alpha, threshold: o.threshold, keep: o.keep, perModule: o.perModule === true,
          stratifyBy: o.stratifyBy, evalFraction: o.evalFraction, r: o.r, loraAlpha: o.loraAlpha, targets: o.targets, steps: o.steps,
          sampleSteps: o.sampleSteps, lr: o.lr, batchSize: o.batchSize, maxTokens: o.maxTokens ?? o.maxLength, warmupSteps: o.warmupSteps, seed: o.seed,
          ...engineArgs(o), ...launchArgs(o), threads: o.threads, profileExamples: o.profileExamples, compare: o.compare, force: o.force === true,
        }, { ...ctx, progress: { report: (u) => bar.report(u) }, onEvent });
        bar.stop();
        if (isNodeOutcome(report)) {
          if (!o.quiet) process.stdout.write(`${nodeDoneLine(report.nodeRank, report.out, "pipeline's output")}\n`);
          return;
        }
        if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
        else if (!o.quiet) process.stdout.write(`${pipelineSummary(report)}\n`);
      } finally {
        bar.stop();
        ctx.done();
      }
    });
}
