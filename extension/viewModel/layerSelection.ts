/**
 * LoRA-drop's layer selection and the parameter count it leads to. Pure functions, shared by every view
 * that marks kept vs shared layers, so the heatmap, the bars and the curve can never disagree.
 */
import type { PruneMode } from "../protocol";

/** Which layers LoRA-drop keeps at a threshold, with the ranking that led there. */
export interface LayerSelection {
  /** kept[i] is true when layer position i keeps its own LoRA. */
  kept: boolean[];
  /** Layer positions sorted by importance, most important first (ties: lower position first). */
  order: number[];
  /** cumulative[k] = summed importance of order[0..k]. */
  cumulative: number[];
  /** How many layers are kept (the first keptCount entries of `order`). */
  keptCount: number;
}

/** Floating-point slack so that, e.g., importances 0.1 + 0.2 meet a threshold of 0.3. */
const THRESHOLD_EPSILON = 1e-9;

/**
 * Sorts layers by importance and keeps them, most important first, until the cumulative importance reaches
 * `threshold`; at least one layer is always kept. When the importances never reach it (all zeros), every
 * layer is kept, since there is no evidence to prune on.
 */
export function selectLayers(importance: readonly number[], threshold: number): LayerSelection {
  const order = importance.map((_, i) => i).sort((a, b) => (importance[b] as number) - (importance[a] as number) || a - b);
  const cumulative: number[] = [];
  let sum = 0;
  for (const i of order) {
    sum += importance[i] as number;
    cumulative.push(sum);
  }
  let keptCount = order.length;
  for (let k = 0; k < cumulative.length; k++) {
    if ((cumulative[k] as number) >= threshold - THRESHOLD_EPSILON) {
      keptCount = k + 1;
      break;
    }
  }
  const kept = importance.map(() => false);
  for (let k = 0; k < keptCount; k++) kept[order[k] as number] = true;
  return { kept, order, cumulative, keptCount };
}

/** LoRA parameter counts before and after LoRA-drop. */
export interface ParameterCounts {
  before: number;
  after: number;
  /** 1 − after/before (0 when the adapter has no parameters). */
  reduction: number;
}

/**
 * Counts LoRA parameters after pruning. Kept layers keep theirs. In "share" mode the other layers use one
 * shared LoRA per module, sized like the largest of theirs for that module; in "drop" mode they have none.
 */
export function countParameters(
  params: Readonly<Record<string, readonly number[]>>,
  modules: readonly string[],
  kept: readonly boolean[],
  mode: PruneMode,
): ParameterCounts {
  let before = 0;
  let after = 0;
  for (const m of modules) {
    const perLayer = params[m] ?? [];
    let sharedSize = 0;
    perLayer.forEach((count, layer) => {
      before += count;
      if (kept[layer]) after += count;
      else sharedSize = Math.max(sharedSize, count);
    });
    if (mode === "share") after += sharedSize;
  }
  return { before, after, reduction: before === 0 ? 0 : 1 - after / before };
}

/** The positions of kept layers, ascending: the form the protocol and the CSV use. */
export function keptPositions(kept: readonly boolean[]): number[] {
  const out: number[] = [];
  kept.forEach((k, i) => {
    if (k) out.push(i);
  });
  return out;
}
