/**
 * `lora-drop sweep`: the loss of every candidate LoRA-drop pruning of an adapter (one per threshold), beside the
 * base model and the full adapter, measured before any retraining; written as a sweep file and printed as a table.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { intArg, memoryBudgetOption, precisionOption, threadsArg } from "./args";
import type { Precision } from "../core/quant/precision";
import { addEngineOptions, engineArgs } from "./engineArgs";
import { runSweep, type SweepOptions } from "../core/sweep/sweep";
import { checkSweepOutput, writeSweep } from "../core/sweep/sweepFile";
import type { SweepFile } from "../core/sweep/sweepSchema";
import type { StreamChoice } from "../core/stream/memoryBudget";
import { terminalContext, pct } from "./terminal";

/** The sweep as a table: one row per candidate (fewest LoRA parameters first), with the base model and the full adapter. */
export function sweepTable(s: SweepFile): string {
  const classifier = s.task === "sequence-classification";
  const layers = (sets: SweepFile["points"][number]["kept_layers"]) => (Array.isArray(sets) ? sets.length : Object.values(sets).reduce((a, l) => a + l.length, 0));
  const head = `${"T".padStart(6)}  ${"kept".padStart(4)}  ${(s.mode === "share" ? "shared" : "dropped").padStart(7)}  ${"LoRA params".padStart(13)}  ${"of full".padStart(7)}  ${"loss".padStart(9)}  ${"vs full".padStart(9)}${classifier ? `  ${"accuracy".padStart(8)}` : ""}`;
  const row = (t: string, kept: string, shared: string, params: number, loss: number, accuracy?: number) =>
    `${t.padStart(6)}  ${kept.padStart(4)}  ${shared.padStart(7)}  ${params.toLocaleString("en-US").padStart(13)}  ${pct(params / Math.max(1, s.adapter.total_params)).padStart(7)}  ${loss.toFixed(5).padStart(9)}  ${signed(loss - s.full_loss).padStart(9)}${classifier ? `  ${(accuracy === undefined ? "" : pct(accuracy)).padStart(8)}` : ""}`;
  const lines = [head, row("base", "", "", 0, s.base_loss, s.base_accuracy)];
  for (const p of s.points) {
    const kept = s.per_module ? `${layers(p.kept_layers)}*` : String(layers(p.kept_layers));
    lines.push(row(p.threshold.toFixed(3), kept, String(layers(p.shared_layers)), p.lora_params, p.loss, p.accuracy));
  }
  lines.push(row("full", "", "", s.adapter.total_params, s.full_loss, s.full_accuracy));
  if (s.per_module) lines.push("* per module: kept (layer, module) pairs");
  const m = s.measured;
  lines.push(`${s.task === "causal-lm" ? "mean token cross-entropy" : "class cross-entropy"} on ${m.examples} examples (${m.targets} targets, ${m.tokens} tokens) of ${m.data}; ` +
    `${s.points.length + 2} configurations in ${m.seconds.toFixed(1)} s on ${m.device}${m.precision && m.precision !== "fp32" ? ` (${m.precision})` : ""}${m.streamed ? `, streamed (${m.configurations_per_pass} per pass)` : ""}`);
  return lines.join("\n");
}

function signed(x: number): string {
  // A difference that rounds to zero prints as +0, whatever float rounding left as its sign.
  return `${x >= -5e-6 ? "+" : "−"}${Math.abs(x).toFixed(5)}`;
}

/** Parses `0.5,0.6,0.9` into thresholds in (0, 1]. */
export function thresholdListArg(v: string): number[] {
  const out = v.split(",").map((part) => {
    const t = Number(part.trim());
    if (!part.trim() || !(t > 0 && t <= 1)) throw new InvalidArgumentError(`expected thresholds in (0, 1] separated by commas, got ${JSON.stringify(part)}`);
    return t;
  });
  return out;
}

/**
 * The engine options of a sweep from the parsed command line. One function, so that an option choosing how the
 * evaluation runs is added here and in SweepOptions only.
 */
export function sweepOptionsFrom(o: Record<string, unknown>): SweepOptions {
  return {
    modelDir: o.model as string, adapterDir: o.adapter as string, profile: o.profile as string, dataPath: o.data as string,
    mode: o.mode as "share" | "drop", perModule: o.perModule === true, thresholds: o.thresholds as number[] | undefined,
    maxExamples: o.maxExamples as number, maxTokens: o.maxTokens as number, batchSize: o.batchSize as number,
    ...engineArgs(o), threads: o.threads as number | undefined, memoryBudget: o.memoryBudget as number | undefined, stream: o.stream as StreamChoice,
    precision: o.precision as Precision,
  };
}

/** Registers the command. */
export function registerSweep(program: Command): void {
  const cmd = program
    .command("sweep")
    .description("measure the loss of the pruned adapter at every threshold (and of the base model and the full adapter), before retraining")
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .requiredOption("--adapter <dir>", "PEFT LoRA adapter folder (read only)")
    .requiredOption("--profile <file>", "profile JSON of this adapter (lora-drop profile)")
    .requiredOption("--data <file>", "dataset to measure the loss on (held-out data, ideally)")
    .requiredOption("--out <file>", "where to write the sweep JSON")
    .option("--thresholds <list>", "thresholds to measure, e.g. 0.5,0.7,0.9 (default: every one at which the kept set changes)", thresholdListArg)
    .addOption(new Option("--mode <mode>", "share: the other layers share one LoRA per module; drop: they lose their LoRA").choices(["share", "drop"]).default("share"))
    .option("--per-module", "select separately for each target module")
    .option("--max-examples <n>", "examples to measure on (the first ones of the file)", intArg, 64)
    .option("--max-tokens <n>", "tokens per example at most", intArg, 128)
    .option("--batch-size <n>", "sequences per run", intArg, 8);
  addEngineOptions(cmd)
    .option("--threads <n>", "CPU threads", threadsArg)
    .addOption(precisionOption())
    .addOption(memoryBudgetOption())
    .addOption(new Option("--stream <mode>", "run the model block by block from its files (auto: when it does not fit the budget)").choices(["auto", "on", "off"]).default("auto"))
    .option("--force", "overwrite an existing sweep file")
    .option("--quiet", "no progress output")
    .option("--verbose", "log details (each configuration's loss, the execution provider)")
    .action(async (o) => {
      const inputs = { files: [o.profile, o.data], folders: [o.model, o.adapter] };
      checkSweepOutput(o.out, inputs, o.force === true);
      const ctx = terminalContext("sweep", o);
      try {
        const sweep = await runSweep(sweepOptionsFrom(o), ctx);
        ctx.done();
        writeSweep(o.out, sweep, inputs, o.force === true);
        if (!o.quiet) process.stdout.write(`${sweepTable(sweep)}\nwrote ${o.out}\n`);
      } finally {
        ctx.done();
      }
    });
}

