/**
 * The panel's "loss vs LoRA parameters" chart and readout, from a sweep file: which measured point the current
 * threshold builds (matched by its kept set, computed by the engine's own selection, so the marker names exactly
 * the adapter `prune` would write), the chart's points and domains, the chart widths beside the other charts, and
 * the sentence under the threshold. Pure: no DOM, no Node.
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import type { SweepFile, SweepPoint } from "../core/sweep/sweepSchema";
import type { LayerSets, PruneMode } from "../core/adapter/dropRecord";
import { selectAmong } from "../core/importance/selection";
import { keptPositions, selectForProfile } from "./layerSelection";
import { compactValue, groupedInteger, percent } from "./format";

/** True when the sweep was measured from this very profile run (a profile made again has another `created`). */
export function sweepMatchesProfile(sweep: SweepFile, profile: ProfileFile): boolean {
  return sweep.profile.created === profile.created;
}

/** The kept layers (by layer index) LoRA-drop keeps at `threshold`: one list, or per module for a per-module sweep. */
export function keptSetAt(profile: ProfileFile, threshold: number, perModule: boolean): LayerSets {
  if (!perModule) return keptPositions(selectForProfile(profile, threshold).kept).map((i) => profile.layers[i] as number);
  const out: Record<string, number[]> = {};
  for (const m of profile.modules) {
    const params = profile.adapter.params[m] ?? [];
    const candidates = params.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
    if (candidates.length === 0) continue;
    out[m] = selectAmong(profile.importance.per_module[m] ?? [], candidates, { threshold }).kept.map((i) => profile.layers[i] as number);
  }
  return out;
}

/** Index of the point whose kept set the threshold builds, or undefined when the sweep did not measure that set. */
export function measuredPointIndex(sweep: SweepFile, profile: ProfileFile, threshold: number): number | undefined {
  const want = canonical(keptSetAt(profile, threshold, sweep.per_module));
  const i = sweep.points.findIndex((p) => canonical(p.kept_layers) === want);
  return i >= 0 ? i : undefined;
}

function canonical(sets: LayerSets): string {
  if (Array.isArray(sets)) return JSON.stringify([...sets].sort((a, b) => a - b));
  return JSON.stringify(Object.keys(sets).filter((m) => (sets[m] ?? []).length > 0).sort().map((m) => [m, [...(sets[m] ?? [])].sort((a, b) => a - b)]));
}

/** One drawn point. */
export interface SweepChartPoint {
  params: number;
  loss: number;
  threshold: number;
  /** Kept layers (pairs for a per-module sweep). */
  kept: number;
  accuracy?: number;
  /** The point the current threshold builds. */
  current: boolean;
}

/** Everything the chart draws. */
export interface SweepChartModel {
  points: SweepChartPoint[];
  base: number;
  full: number;
  totalParams: number;
  /** x: LoRA parameters, from 0 to the full adapter's. */
  x: [number, number];
  /** y: loss, covering every point and both reference lines with a margin. */
  y: [number, number];
  current?: number;
}

/** The chart's model for a sweep, with `current` the point the threshold builds. */
export function sweepChartModel(sweep: SweepFile, current: number | undefined): SweepChartModel {
  const points = sweep.points.map((p, i): SweepChartPoint => ({
    params: p.lora_params, loss: p.loss, threshold: p.threshold, kept: countLayers(p.kept_layers), current: i === current,
    ...(p.accuracy !== undefined ? { accuracy: p.accuracy } : {}),
  }));
  const values = [sweep.base_loss, sweep.full_loss, ...points.map((p) => p.loss)];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  // A flat sweep (a zero adapter) still gets a visible band around its one value.
  const pad = hi > lo ? 0.08 * (hi - lo) : Math.max(1e-3, 0.01 * Math.abs(hi));
  const maxParams = Math.max(sweep.adapter.total_params, ...points.map((p) => p.params), 1);
  return { points, base: sweep.base_loss, full: sweep.full_loss, totalParams: sweep.adapter.total_params, x: [0, maxParams], y: [lo - pad, hi + pad], ...(current !== undefined ? { current } : {}) };
}

/** Kept layers of a point (kept pairs, summed over modules, for a per-module sweep). */
export function countLayers(sets: LayerSets): number {
  return Array.isArray(sets) ? sets.length : Object.values(sets).reduce((a, l) => a + l.length, 0);
}

/**
 * The sentence under the threshold: the measured loss of the adapter the threshold builds, against the full
 * adapter and the base model; empty without a sweep for this mode.
 */
export function sweepSummary(sweep: SweepFile | undefined, point: SweepPoint | undefined, mode: PruneMode): string {
  if (!sweep) return "";
  if (sweep.mode !== mode) return `The thresholds were evaluated in ${sweep.mode} mode, not ${mode}.`;
  if (!point) return "The sweep did not measure the adapter this threshold builds; evaluate the thresholds again to see its loss.";
  const acc = point.accuracy !== undefined ? `, accuracy ${percent(point.accuracy)}` : "";
  const delta = point.loss - sweep.full_loss;
  return `Measured loss before retraining: ${lossText(point.loss)} (${delta >= 0 ? "+" : "−"}${lossText(Math.abs(delta))} vs the full adapter's ${lossText(sweep.full_loss)}; ` +
    `base model ${lossText(sweep.base_loss)})${acc}, with ${groupedInteger(point.lora_params)} LoRA parameters.`;
}

/** A loss as the panel prints it: 4 decimals, or 3 significant digits when tiny. */
export function lossText(loss: number): string {
  return Math.abs(loss) >= 0.01 || loss === 0 ? loss.toFixed(4) : compactValue(loss);
}

/**
 * Widths of the layer-importance charts and, beside the cumulative curve, the sweep chart: all three in a row
 * when there is room; else the bars on a row of their own and the curve and the sweep side by side; else stacked.
 */
export function chartWidths(available: number): { bars: number; curve: number; sweep: number } {
  if (available >= 1050) {
    const w = Math.floor(available / 3 - 16);
    return { bars: w, curve: w, sweep: w };
  }
  if (available >= 700) {
    const half = Math.floor(available / 2 - 16);
    return { bars: Math.floor(available - 8), curve: half, sweep: half };
  }
  const full = Math.max(260, Math.floor(available - 8));
  return { bars: full, curve: full, sweep: full };
}
