/**
 * LoRA-drop's layer selection and the parameter count it leads to. Pure functions, shared by every view
 * that marks kept vs shared layers, so the heatmap, the bars and the curve can never disagree.
 */
import { cumulativeCurve, normalise, rankByImportance, selectAmong } from "../core/importance/selection";
import type { ProfileFile } from "../core/importance/profileSchema";
import type { PruneMode } from "../core/adapter/dropRecord";

/** Which layers LoRA-drop keeps at a threshold, with the ranking that led there. */
export interface LayerSelection {
  /** kept[i] is true when layer position i keeps its own LoRA. */
  kept: boolean[];
  /** candidate[i] is false for a layer that carries no LoRA at all: it is neither kept nor shared. */
  candidate: boolean[];
  /** Candidate positions sorted by importance, most important first (ties: lower position first). */
  order: number[];
  /** cumulative[k] = importance of order[0..k], renormalised over the candidates (what T is compared with). */
  cumulative: number[];
  /** How many layers are kept (the first keptCount entries of `order`). */
  keptCount: number;
}

/**
 * LoRA-drop's selection, computed by the engine's own code (core/selection.ts) so the panel always shows what
 * `prune` will do: among the candidate layers (default: all), importance is renormalised, layers are sorted by
 * it and kept until the cumulative importance reaches `threshold`; at least one is kept. When the importances
 * never reach it (all zeros), every candidate is kept, since there is no evidence to prune on.
 */
export function selectLayers(importance: readonly number[], threshold: number, candidates?: readonly number[]): LayerSelection {
  const positions = candidates ?? importance.map((_, i) => i);
  const chosen = selectAmong(importance, positions, { threshold });
  const sub = normalise(positions.map((i) => importance[i] ?? 0));
  const order = rankByImportance(sub).map((k) => positions[k] as number);
  const kept = importance.map(() => false);
  for (const i of chosen.kept) kept[i] = true;
  const candidate = importance.map(() => false);
  for (const i of positions) candidate[i] = true;
  return { kept, candidate, order, cumulative: cumulativeCurve(sub), keptCount: chosen.kept.length };
}

/** Layer positions that carry a LoRA for at least one module: the only ones LoRA-drop keeps or shares. */
export function loraCandidates(params: Readonly<Record<string, readonly number[]>>, modules: readonly string[], layerCount: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < layerCount; i++) if (modules.some((m) => (params[m]?.[i] ?? 0) > 0)) out.push(i);
  return out;
}

/** The selection `prune` makes for this profile's adapter at `threshold` (per-layer importance, LoRA layers only). */
export function selectForProfile(profile: ProfileFile, threshold: number): LayerSelection {
  return selectLayers(profile.importance.per_layer, threshold, loraCandidates(profile.adapter.params, profile.modules, profile.layers.length));
}

/** A layer's fate: keeps its own LoRA, shares (or loses) it, or has none to begin with. */
export type LayerStatus = "kept" | "shared" | "none";

/** Each layer position's status under `selection`. */
export function layerStatus(selection: LayerSelection): LayerStatus[] {
  return selection.kept.map((k, i) => (k ? "kept" : selection.candidate[i] ? "shared" : "none"));
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
