/**
 * The pipeline's report: a JSON record (snake_case, versioned, for tools) and a Markdown rendering (for people)
 * of what LoRA-drop did — the sample, the per-layer importance, the kept and shared layers, the parameter counts,
 * and the losses of full LoRA and LoRA-drop after the same number of steps on the same data, plus the loss on a
 * held-out split.
 */
import { rankByImportance } from "../importance/selection";
import { layersFor, LayerSets } from "../adapter/dropRecord";

/** The schema tag of report.json. */
export const REPORT_SCHEMA = "lora-drop.pipeline-report";
/** The version of report.json's layout. */
export const REPORT_VERSION = 1;

/** One training run as reported. */
export interface RunSummary {
  /** Adapter folder, relative to the output folder. */
  adapter: string;
  steps: number;
  trainable_params: number;
  losses: { step: number; loss: number; lr: number }[];
  /** Loss of the last optimiser step (one batch: noisy). */
  final_loss: number;
  /** Mean step loss over the last 10% of the steps (at least one). */
  mean_last_loss: number;
  /** Mean loss over all training examples with the final values. */
  train_loss: number | null;
  /** Mean loss over the held-out examples with the final values. */
  eval_loss: number | null;
  /** Sequence classifiers: held-out accuracy (and Matthews correlation for two classes). */
  eval_metrics?: EvalMetrics | null;
  seconds: number;
}

/** Held-out classification metrics. */
export interface EvalMetrics {
  examples: number;
  accuracy: number;
  mcc?: number;
}

/** report.json. */
export interface PipelineReport {
  schema: typeof REPORT_SCHEMA;
  version: typeof REPORT_VERSION;
  created: string;
  /** The execution provider that trained. */
  device: string;
  /** Absolute path of the output folder. */
  out: string;
  settings: Record<string, unknown>;
  data: {
    file: string;
    examples: number;
    train: number;
    eval: number;
    sample: number;
    stratify_by: string | null;
    strata: { key: string; train: number; sample: number }[];
    /** Dataset indices (0-based, in file order) of the held-out examples. */
    eval_indices: number[];
  };
  sample_run: RunSummary;
  profile: { file: string; criterion: string; sequences: number; tokens: number };
  importance: { layers: number[]; per_layer: number[]; per_module: Record<string, number[]> };
  selection: { per_module: boolean; kept: LayerSets; shared: LayerSets; coverage: number | Record<string, number>; threshold: number | null; keep: number | null };
  params: { lora: number; lora_drop: number; reduction: number };
  lora_drop: RunSummary;
  /** The full-LoRA run trained for comparison (null when skipped). */
  lora: RunSummary | null;
  /** Held-out loss of the base model without any LoRA. */
  base_eval_loss: number | null;
  /** Sequence classifiers: held-out metrics of the base model without any LoRA. */
  base_eval_metrics?: EvalMetrics | null;
  files: Record<string, string>;
  seconds: number;
}

/** Mean step loss over the last 10% of a run (at least one step). */
export function meanLastLoss(losses: readonly { loss: number }[]): number {
  if (losses.length === 0) return NaN;
  const k = Math.max(1, Math.round(losses.length / 10));
  return losses.slice(-k).reduce((a, l) => a + l.loss, 0) / k;
}

/** The Markdown rendering of a report. */
export function renderMarkdown(r: PipelineReport): string {
  const out: string[] = [];
  const num = (x: number | null | undefined, d = 4) => (x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
  const int = (x: number) => x.toLocaleString("en-US");
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  out.push("# LoRA-drop report", "");
  out.push(`Created ${r.created} on ${r.device}, in ${r.seconds.toFixed(0)} s. Output folder: \`${r.out}\`.`, "");
  out.push("## Parameters", "");
  out.push("| | trainable LoRA parameters |", "|---|---:|");
  out.push(`| full LoRA | ${int(r.params.lora)} |`, `| LoRA-drop | ${int(r.params.lora_drop)} |`, `| reduction | ${pct(r.params.reduction)} |`, "");

  out.push("## Losses", "");
  out.push(`Both runs: ${r.lora_drop.steps} steps on the same ${r.data.train} training examples in the same order; held-out split: ${r.data.eval} examples.`, "");
  out.push("| | full LoRA | LoRA-drop |", "|---|---:|---:|");
  const row = (label: string, f: (s: RunSummary) => number | null, d = 4) => out.push(`| ${label} | ${r.lora ? num(f(r.lora), d) : "not run"} | ${num(f(r.lora_drop), d)} |`);
  row("loss at the last step", (s) => s.final_loss);
  row("mean loss, last 10% of steps", (s) => s.mean_last_loss);
  row("loss on the training set (final values)", (s) => s.train_loss);
  row("loss on the held-out split", (s) => s.eval_loss);
  row("training time (s)", (s) => s.seconds, 1);
  out.push("", `Base model without LoRA, held-out loss: ${num(r.base_eval_loss)}.`, "");
  if (r.lora_drop.eval_metrics) {
    const m = (s: EvalMetrics | null | undefined, k: "accuracy" | "mcc") => (s ? num(s[k]) : "not run");
    const binary = r.lora_drop.eval_metrics.mcc !== undefined;
    out.push("## Classification on the held-out split", "", `${r.lora_drop.eval_metrics.examples} examples.`, "");
    out.push("| | base model | full LoRA | LoRA-drop |", "|---|---:|---:|---:|");
    out.push(`| accuracy | ${m(r.base_eval_metrics, "accuracy")} | ${m(r.lora?.eval_metrics, "accuracy")} | ${m(r.lora_drop.eval_metrics, "accuracy")} |`);
    if (binary) out.push(`| Matthews correlation | ${m(r.base_eval_metrics, "mcc")} | ${m(r.lora?.eval_metrics, "mcc")} | ${m(r.lora_drop.eval_metrics, "mcc")} |`);
    out.push(`| trainable LoRA parameters | 0 | ${int(r.params.lora)} | ${int(r.params.lora_drop)} |`, "");
  }
  out.push("### Loss curve", "", "| step | full LoRA | LoRA-drop |", "|---:|---:|---:|");
  const every = Math.max(1, Math.ceil(r.lora_drop.losses.length / 20));
  r.lora_drop.losses.forEach((l, i) => {
    if ((i + 1) % every !== 0 && i !== r.lora_drop.losses.length - 1 && i !== 0) return;
    out.push(`| ${l.step} | ${r.lora ? num(r.lora.losses[i]?.loss) : "—"} | ${num(l.loss)} |`);
  });
  out.push("");

  out.push("## Layer importance", "");
  out.push(`Measured on the ${r.data.sample}-example stratified sample (${r.data.stratify_by ? `by \`${r.data.stratify_by}\`` : "by token length"}) after a ${r.sample_run.steps}-step LoRA run (final loss ${num(r.sample_run.final_loss)}). ${r.selection.threshold !== null ? `Threshold T = ${r.selection.threshold}.` : `Kept the ${r.selection.keep} most important.`}`, "");
  if (!r.selection.per_module) {
    out.push(importanceTable(r.importance.layers, r.importance.per_layer, layersFor(r.selection.kept, ""), layersFor(r.selection.shared, "")));
  } else {
    for (const [m, imp] of Object.entries(r.importance.per_module)) {
      out.push(`### ${m}`, "", importanceTable(r.importance.layers, imp, layersFor(r.selection.kept, m), layersFor(r.selection.shared, m)));
    }
  }
  out.push("", `Kept: ${describeSets(r.selection.kept)}. Shared: ${describeSets(r.selection.shared)}.`, "");

  out.push("## Data", "", `${r.data.file}: ${r.data.examples} examples; ${r.data.train} for training, ${r.data.eval} held out, ${r.data.sample} sampled.`, "");
  out.push("| stratum | training | sampled |", "|---|---:|---:|");
  for (const s of r.data.strata) out.push(`| ${s.key.replace(/\|/g, "\\|")} | ${s.train} | ${s.sample} |`);
  out.push("", "## Files", "");
  for (const [k, v] of Object.entries(r.files)) out.push(`- ${k}: \`${v}\``);
  out.push("", "## Settings", "", "```json", JSON.stringify(r.settings, null, 2), "```", "");
  return out.join("\n");
}

/** Layers by importance with the cumulative share and what became of each. */
function importanceTable(layers: number[], importance: number[], kept: number[], shared: number[]): string {
  const rows = ["| rank | layer | importance | cumulative | |", "|---:|---:|---:|---:|---|"];
  let cum = 0;
  rankByImportance(importance).forEach((p, rank) => {
    const layer = layers[p]!;
    cum += importance[p]!;
    const status = kept.includes(layer) ? "kept" : shared.includes(layer) ? "shared" : "no LoRA";
    rows.push(`| ${rank + 1} | ${layer} | ${(100 * importance[p]!).toFixed(1)}% | ${(100 * cum).toFixed(1)}% | ${status} |`);
  });
  return rows.join("\n");
}

/** "0, 2, 5" or "q_proj: 0, 2; v_proj: 1". */
export function describeSets(s: LayerSets): string {
  const list = (xs: number[]) => (xs.length ? xs.join(", ") : "none");
  return Array.isArray(s) ? list(s) : Object.entries(s).map(([m, xs]) => `${m}: ${list(xs)}`).join("; ");
}
