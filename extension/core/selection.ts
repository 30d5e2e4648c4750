/**
 * LoRA-drop's layer selection: sort layers by normalised importance, keep layers until the cumulative importance
 * reaches the threshold (at least one), share (or drop) the rest. Pure functions, no Node or DOM imports, so the
 * webview uses the very same code as the engine.
 */

/** I_i = g_i / Σ g (all zeros when Σ g is 0). */
export function normalise(raw: readonly number[]): number[] {
  const total = raw.reduce((a, b) => a + b, 0);
  return total > 0 ? raw.map((g) => g / total) : raw.map(() => 0);
}

/** Layer positions sorted by importance, descending (ties: lower layer first, so the order is deterministic). */
export function rankByImportance(importance: readonly number[]): number[] {
  return importance.map((_, i) => i).sort((a, b) => importance[b]! - importance[a]! || a - b);
}

/** The result of a selection. */
export interface Selection {
  /** Positions kept with their own LoRA, ascending. */
  kept: number[];
  /** Positions that share one LoRA (or lose it), ascending. */
  shared: number[];
  /** Cumulative importance of the kept set. */
  coverage: number;
}

/**
 * Keeps layers in importance order until their cumulative importance reaches `threshold` (in (0, 1]).
 * At least one layer is kept. A tiny tolerance absorbs float rounding so T = 1 keeps exactly the non-zero layers.
 */
export function selectByThreshold(importance: readonly number[], threshold: number): Selection {
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  const order = rankByImportance(importance);
  const kept: number[] = [];
  let cum = 0;
  for (const i of order) {
    if (kept.length > 0 && cum >= threshold - 1e-12) break;
    kept.push(i);
    cum += importance[i]!;
  }
  return finish(importance, kept, cum);
}

/** Keeps the `keep` most important layers. */
export function selectTopK(importance: readonly number[], keep: number): Selection {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
  const kept = rankByImportance(importance).slice(0, keep);
  return finish(importance, kept, kept.reduce((a, i) => a + importance[i]!, 0));
}

function finish(importance: readonly number[], kept: number[], coverage: number): Selection {
  const set = new Set(kept);
  return {
    kept: [...kept].sort((a, b) => a - b),
    shared: importance.map((_, i) => i).filter((i) => !set.has(i)),
    coverage,
  };
}

/** Cumulative importance in ranked order: curve[k] = importance of the k+1 most important layers. */
export function cumulativeCurve(importance: readonly number[]): number[] {
  let cum = 0;
  return rankByImportance(importance).map((i) => (cum += importance[i]!));
}

/**
 * LoRA parameters after drop-and-share. `params[module][layer]` counts each layer's own LoRA. In "share" mode each
 * module's shared set keeps one LoRA (the largest among the shared layers); in "drop" mode the shared set has none.
 */
export function paramsAfter(params: Record<string, readonly number[]>, kept: readonly number[], mode: "share" | "drop"): { before: number; after: number; reduction: number } {
  const keptSet = new Set(kept);
  let before = 0;
  let after = 0;
  for (const perLayer of Object.values(params)) {
    let sharedMax = 0;
    perLayer.forEach((n, layer) => {
      before += n;
      if (keptSet.has(layer)) after += n;
      else sharedMax = Math.max(sharedMax, n);
    });
    if (mode === "share") after += sharedMax;
  }
  return { before, after, reduction: before > 0 ? 1 - after / before : 0 };
}
