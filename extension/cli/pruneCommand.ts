/**
 * `lora-drop prune`: LoRA-drop's drop-and-share applied to an existing adapter, from its profile.
 */
import { Command, Option } from "commander";
import { pruneAdapter, PruneResult } from "../core/prune/prune";
import { layersFor } from "../core/adapter/dropRecord";
import { rankByImportance } from "../core/importance/selection";
import { terminalContext, pct } from "./terminal";
import { intArg, thresholdArg } from "./args";

/** The table printed after a prune: layers by importance, cumulative share, and what became of each. */
export function pruneSummary(r: PruneResult): string {
  const lines: string[] = [];
  const sel = r.selection;
  const verb = r.record.mode === "share" ? "shared" : "dropped";
  const table = (importance: number[], kept: number[], shared: number[]) => {
    const rows = ["rank  layer  importance  cumulative  status"];
    let cum = 0;
    rankByImportance(importance).forEach((layer, rank) => {
      const status = kept.includes(layer) ? "kept" : shared.includes(layer) ? verb : "no LoRA";
      if (status === "no LoRA") return;
      cum += importance[layer]!;
      rows.push(`${String(rank + 1).padStart(4)}  ${String(layer).padStart(5)}  ${pct(importance[layer]!).padStart(10)}  ${pct(cum).padStart(10)}  ${status}`);
    });
    return rows.join("\n");
  };
  if (Array.isArray(sel.importance)) {
    lines.push(table(sel.importance, layersFor(sel.kept, ""), layersFor(sel.shared, "")));
    lines.push(`kept: ${list(layersFor(sel.kept, ""))}; ${verb}: ${list(layersFor(sel.shared, ""))} (coverage ${pct(sel.coverage as number)})`);
  } else {
    for (const [m, imp] of Object.entries(sel.importance)) {
      lines.push(`${m}:`, table(imp, layersFor(sel.kept, m), layersFor(sel.shared, m)));
      lines.push(`${m} kept: ${list(layersFor(sel.kept, m))}; ${verb}: ${list(layersFor(sel.shared, m))} (coverage ${pct((sel.coverage as Record<string, number>)[m]!)})`);
    }
  }
  for (const s of r.sharedInit) {
    lines.push(`shared ${s.module} (layers ${s.layers.join(", ")}): rank-${s.r} approximation of their mean update keeps ${pct(s.energyKept)} of its energy`);
  }
  lines.push(`trainable LoRA parameters: ${r.paramsBefore.toLocaleString("en-US")} → ${r.paramsAfter.toLocaleString("en-US")} (${pct(r.reduction)} fewer)`);
  lines.push(`verified: the written adapter loads back with the same structure and values (${r.record.format} format)`);
  lines.push(`wrote ${r.outDir}`);
  return lines.join("\n");
}


function list(xs: number[]): string {
  return xs.length ? xs.join(", ") : "none";
}

/** Registers the command. */
export function registerPrune(program: Command): void {
  program
    .command("prune")
    .description("apply LoRA-drop to an adapter: keep the important layers' LoRA, share (or drop) the rest")
    .requiredOption("--adapter <dir>", "PEFT LoRA adapter folder (read only)")
    .requiredOption("--profile <file>", "profile JSON of this adapter (lora-drop profile)")
    .requiredOption("--out <dir>", "new adapter folder to write")
    .option("--threshold <t>", "keep layers until their cumulative importance reaches t, in (0, 1]", thresholdArg, 0.9)
    .option("--keep <n>", "keep the n most important layers instead of using a threshold", intArg)
    .option("--per-module", "select separately for each target module")
    .addOption(new Option("--mode <mode>", "share: the other layers share one LoRA per module; drop: they lose their LoRA").choices(["share", "drop"]).default("share"))
    .addOption(new Option("--format <format>", "peft: standard PEFT folder; compact: the shared LoRA stored once (this tool only)").choices(["peft", "compact"]).default("peft"))
    .option("--model <dir>", "base model folder (default: the one recorded in the profile)")
    .option("--force", "replace the output folder if it exists")
    .option("--quiet", "print only errors")
    .option("--verbose", "log details")
    .action(async (o) => {
      const ctx = terminalContext("prune", o);
      try {
        const result = await pruneAdapter({
          adapterDir: o.adapter, profile: o.profile, outDir: o.out, modelDir: o.model, threshold: o.threshold, keep: o.keep,
          perModule: o.perModule === true, mode: o.mode, format: o.format, force: o.force === true,
        }, ctx);
        ctx.done();
        if (!o.quiet) process.stdout.write(`${pruneSummary(result)}\n`);
      } finally {
        ctx.done();
      }
    });
}
