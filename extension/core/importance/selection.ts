/**
 * LoRA-drop's layer selection: sort layers by normalised importance, keep layers until the cumulative importance
 * reaches the threshold (at least one), share (or drop) the rest. Pure functions, no Node or DOM imports, so the
 * webview uses the very same code as the engine.
 */
import type { PruneMode } from "../adapter/dropRecord";

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

/** How many layers to keep: up to a cumulative-importance threshold, or a fixed number. */
export type SelectionRule = { threshold: number; keep?: undefined } | { keep: number; threshold?: undefined };

/** Applies a rule to a full importance list (positions 0 … n-1). */
export function selectByRule(importance: readonly number[], rule: SelectionRule): Selection {
  return rule.keep !== undefined ? selectTopK(importance, Math.min(rule.keep, Math.max(importance.length, 1))) : selectByThreshold(importance, rule.threshold);
}

/**
 * Applies a rule among `candidates` only (the positions that carry a LoRA); the other positions are neither kept
 * nor shared. Importance is renormalised over the candidates, so the threshold is a share of what they carry, and
 * `keep` larger than the number of candidates keeps them all.
 */
export function selectAmong(importance: readonly number[], candidates: readonly number[], rule: SelectionRule): Selection {
  if (candidates.length === 0) return { kept: [], shared: [], coverage: 0 };
  const sub = normalise(candidates.map((i) => importance[i] ?? 0));
  const s = selectByRule(sub, rule);
  const back = (ps: number[]) => ps.map((p) => candidates[p]!).sort((a, b) => a - b);
  return { kept: back(s.kept), shared: back(s.shared), coverage: s.coverage };
}

/** Per-module selection (`--per-module`): the rule applied to each module's own importance list. */
export function selectPerModule(perModule: Readonly<Record<string, readonly number[]>>, candidates: Readonly<Record<string, readonly number[]>>, rule: SelectionRule): Record<string, Selection> {
  const out: Record<string, Selection> = {};
  for (const [m, imp] of Object.entries(perModule)) out[m] = selectAmong(imp, candidates[m] ?? [], rule);
  return out;
}

/** Cumulative importance in ranked order: curve[k] = importance of the k+1 most important layers. */
export function cumulativeCurve(importance: readonly number[]): number[] {
  let cum = 0;
  return rankByImportance(importance).map((i) => (cum += importance[i]!));
}

/**
 * LoRA parameters after drop-and-share. `params[module][layer]` counts each layer's own LoRA; `kept` lists the kept
 * layers, for all modules or per module. In "share" mode each module's shared set keeps one LoRA (the largest among
 * the shared layers); in "drop" mode the shared set has none.
 */
export function paramsAfter(params: Record<string, readonly number[]>, kept: readonly number[] | Readonly<Record<string, readonly number[]>>, mode: PruneMode): { before: number; after: number; reduction: number } {
  let before = 0;
  let after = 0;
  for (const [module, perLayer] of Object.entries(params)) {
    // A list keeps the same layers for every module; a record (per-module selection) names them module by module.
    const keptSet = new Set(Array.isArray(kept) ? kept : (kept as Readonly<Record<string, readonly number[]>>)[module] ?? []);
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
