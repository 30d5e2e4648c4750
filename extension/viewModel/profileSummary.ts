/**
 * What a profile found, in two sentences a user reads at the end of a run (the CLI's output, the extension's
 * notification): which layers matter most, and what a threshold T would keep. Computed with the panel's own
 * selection and parameter count, so the sentence, the heatmap and `prune` always agree. Pure.
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import { countParameters, keptPositions, selectForProfile } from "./layerSelection";

/** The profile fields the summary reads. */
export type SummaryInput = Pick<ProfileFile, "layers" | "modules" | "importance" | "adapter">;

/** The two sentences, e.g. "Layers 4, 0 and 2 matter most: 61% of the LoRA output." and what T keeps. */
export function profileConclusion(p: SummaryInput, threshold: number): string[] {
  const sel = selectForProfile(p as ProfileFile, threshold);
  const imp = p.importance.per_layer;
  const total = sel.order.reduce((a, i) => a + (imp[i] ?? 0), 0);
  if (sel.order.length === 0 || !(total > 0)) {
    return ["No layer's LoRA changes the model's output on these examples (every importance is 0), so there is nothing to rank."];
  }
  const top = sel.order.slice(0, Math.min(3, sel.order.length));
  const share = top.reduce((a, i) => a + imp[i]!, 0) / total;
  const names = top.map((i) => String(p.layers[i]));
  const first = top.length === 1
    ? `Layer ${names[0]} carries ${percent(share)} of the LoRA output.`
    : `Layers ${joinWords(names)} matter most: together ${percent(share)} of the LoRA output (layer ${names[0]} alone ${percent(imp[top[0]!]! / total)}).`;
  const kept = keptPositions(sel.kept).map((i) => p.layers[i]!);
  const others = sel.order.length - kept.length;
  const params = countParameters(p.adapter.params, p.modules, sel.kept, "share");
  const t = `T = ${formatT(threshold)}`;
  const second = others === 0
    ? `${t} keeps all ${kept.length} layers with a LoRA: nothing to share at this threshold.`
    : others === 1
      ? `${t} keeps ${kept.length} of ${sel.order.length} layers (${kept.join(", ")}); one layer left over saves nothing (sharing takes two or more).`
      : `${t} keeps ${kept.length} of ${sel.order.length} layers (${kept.join(", ")}); the other ${others} would share one LoRA, ${percent(params.reduction)} fewer LoRA parameters.`;
  return [first, second];
}

/** "4, 0 and 2". */
function joinWords(xs: readonly string[]): string {
  return xs.length <= 1 ? (xs[0] ?? "") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
}

function percent(x: number): string {
  return `${Math.round(100 * x)}%`;
}

/** A threshold as the user typed it: 0.9, 0.95, 1. */
function formatT(t: number): string {
  return String(Number(t.toFixed(4)));
}
