/**
 * Mapping of LoRA output magnitudes to a colour position t ∈ [0, 1], linear or logarithmic, and the legend
 * ticks that go with it. Colour itself (the ramp) is chosen by the webview; this module only does numbers.
 */

/** Linear maps [0, max] onto [0, 1]; log maps [minPositive, max] onto [0, 1] in log space. */
export type ScaleKind = "linear" | "log";

/** A value → position mapping with the domain it was built from. */
export interface ValueScale {
  kind: ScaleKind;
  /** Lower end of the domain: 0 for linear, the smallest positive value for log. */
  min: number;
  /** Upper end of the domain: the largest value (or min when all values are equal). */
  max: number;
  /** Maps a value to [0, 1]; for log, values ≤ 0 map to -1 so the renderer can paint them as "zero". */
  position(value: number): number;
}

/** The smallest positive and the largest value of `values` (undefined fields when there is none). */
export function valueExtent(values: Iterable<number>): { minPositive: number | undefined; max: number | undefined } {
  let minPositive: number | undefined;
  let max: number | undefined;
  for (const v of values) {
    if (max === undefined || v > max) max = v;
    if (v > 0 && (minPositive === undefined || v < minPositive)) minPositive = v;
  }
  return { minPositive, max };
}

/** Builds the scale for data whose extent is given (see valueExtent). */
export function makeValueScale(kind: ScaleKind, extent: { minPositive: number | undefined; max: number | undefined }): ValueScale {
  const max = extent.max ?? 0;
  if (kind === "linear") {
    return { kind, min: 0, max, position: (v) => (max > 0 ? clamp01(v / max) : 0) };
  }
  const min = extent.minPositive ?? 1;
  const top = Math.max(max, min);
  const logMin = Math.log10(min);
  const span = Math.log10(top) - logMin;
  return {
    kind,
    min,
    max: top,
    // Zero has no logarithm; -1 tells the renderer to use its "zero" colour instead of the ramp's bottom.
    position: (v) => (v <= 0 ? -1 : span > 0 ? clamp01((Math.log10(v) - logMin) / span) : 1),
  };
}

/** Legend ticks: "nice" round values inside the scale's domain, each with its position. */
export function scaleTicks(scale: ValueScale, count = 5): { value: number; position: number }[] {
  const values = scale.kind === "linear" ? linearTicks(scale.min, scale.max, count) : logTicks(scale.min, scale.max, count);
  return values.map((value) => ({ value, position: scale.position(value) }));
}

/** Round tick values (1, 2 or 5 × 10^k steps) covering [min, max], about `count` of them. */
export function linearTicks(min: number, max: number, count: number): number[] {
  if (!(max > min) || count < 1) return [min];
  const rough = (max - min) / count;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let i = Math.ceil(min / step); i * step <= max * (1 + 1e-12); i++) ticks.push(roundTo(i * step, step));
  return ticks;
}

/**
 * Log-scale ticks: powers of ten inside [min, max] (thinned to about `count`) when there are at least three;
 * otherwise 1-2-5 multiples of powers of ten, so a domain spanning less than a decade still gets labels.
 */
export function logTicks(min: number, max: number, count: number): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const lo = Math.ceil(Math.log10(min) - 1e-12);
  const hi = Math.floor(Math.log10(max) + 1e-12);
  if (hi - lo + 1 >= 3) {
    const every = Math.max(1, Math.ceil((hi - lo + 1) / count));
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e += every) ticks.push(Math.pow(10, e));
    return ticks;
  }
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * Math.pow(10, e)).toPrecision(12));
      if (v >= min * (1 - 1e-12) && v <= max * (1 + 1e-12)) ticks.push(v);
    }
  }
  return ticks.length > 0 ? ticks : [min];
}

function clamp01(t: number): number {
  return t < 0 ? 0 : t > 1 ? 1 : t;
}

/** Removes floating noise such as 0.30000000000000004 from step multiples. */
function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(decimals, 20)));
}
