/**
 * Seeded stratified sampling, LoRA-drop's first step: a fraction α of the data, drawn so that every stratum is
 * represented in proportion. Strata are the values of a label field when one is named, otherwise buckets of
 * token length (quantiles), so short and long examples are both profiled.
 */
import { LoraDropError } from "../util/errors";
import { RawExample } from "./dataset";
import { Rng } from "../util/random";

/** One stratum: a label value or a length range, and the dataset indices in it (ascending). */
export interface Stratum {
  key: string;
  indices: number[];
}

/** Number of length buckets used when no label field is given. */
export const DEFAULT_LENGTH_BUCKETS = 4;

/**
 * Groups examples by the value of `field` (every example must have it), or, without a field, by token length
 * into `buckets` quantile buckets. Only the examples in `pool` (default all) take part. Strata are ordered by key.
 */
export function strataOf(raw: readonly RawExample[], lengths: readonly number[], field?: string, pool?: readonly number[], file = "dataset", buckets = DEFAULT_LENGTH_BUCKETS): Stratum[] {
  const members = pool ? [...pool] : raw.map((_, i) => i);
  const groups = new Map<string, number[]>();
  const add = (key: string, i: number) => {
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  };
  if (field !== undefined) {
    for (const i of members) {
      const ex = raw[i]!;
      // Own fields only: `constructor` or `__proto__` must not be found on every record's prototype.
      if (!Object.prototype.hasOwnProperty.call(ex.fields, field)) {
        throw new LoraDropError("DATASET_INVALID", `line ${ex.line} has no field ${JSON.stringify(field)} to stratify by (--stratify-by names a field of every record)`, file, field);
      }
      const v = ex.fields[field];
      if (typeof v === "object" && v !== null) {
        throw new LoraDropError("DATASET_INVALID", `line ${ex.line}: field ${JSON.stringify(field)} holds ${Array.isArray(v) ? "a list" : "an object"}; stratify by a field with plain values (strings, numbers)`, file, field);
      }
      add(typeof v === "string" ? v : JSON.stringify(v), i);
    }
  } else if (members.length > 0) {
    // Quantile edges over the pool's lengths; equal lengths always land in the same bucket.
    const sorted = members.map((i) => lengths[i]!).sort((a, b) => a - b);
    const edges = [...new Set(Array.from({ length: buckets - 1 }, (_, k) => sorted[Math.floor((sorted.length * (k + 1)) / buckets)]!))].filter((e) => e > sorted[0]!);
    const bucketOf = (len: number) => edges.filter((e) => len >= e).length;
    const byBucket: number[][] = Array.from({ length: edges.length + 1 }, () => []);
    for (const i of members) byBucket[bucketOf(lengths[i]!)]!.push(i);
    for (const idx of byBucket) {
      if (!idx.length) continue;
      const lo = idx.reduce((a, i) => Math.min(a, lengths[i]!), Infinity);
      const hi = idx.reduce((a, i) => Math.max(a, lengths[i]!), 0);
      // Zero-padded so that sorting the keys sorts the buckets by length.
      groups.set(`length ${String(lo).padStart(5, "0")}-${String(hi).padStart(5, "0")}`, idx);
    }
  }
  return [...groups].map(([key, indices]) => ({ key, indices: [...indices].sort((a, b) => a - b) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Draws round(fraction·N) examples (at least 1) across strata in proportion to their sizes (largest remainder
 * for the rounding), each stratum's share chosen by a seeded shuffle. Returns dataset indices, ascending, and the
 * count taken from each stratum.
 */
export function stratifiedSample(strata: readonly Stratum[], fraction: number, seed: number): { indices: number[]; taken: number[] } {
  if (!(fraction > 0 && fraction <= 1)) throw new LoraDropError("INVALID_ARGUMENT", `the sample fraction must be in (0, 1], got ${fraction}`, undefined, "sampleFraction");
  const N = strata.reduce((a, s) => a + s.indices.length, 0);
  const total = Math.min(N, Math.max(1, Math.round(fraction * N)));
  const quotas = strata.map((s) => (total * s.indices.length) / Math.max(N, 1));
  const taken = quotas.map(Math.floor);
  let left = total - taken.reduce((a, b) => a + b, 0);
  // Largest remainder first; ties go to the larger stratum, then the earlier one, so the result is deterministic.
  const order = strata.map((_, i) => i).sort((a, b) => quotas[b]! - taken[b]! - (quotas[a]! - taken[a]!) || strata[b]!.indices.length - strata[a]!.indices.length || a - b);
  for (const i of order) {
    if (left === 0) break;
    if (taken[i]! < strata[i]!.indices.length) { taken[i]!++; left--; }
  }
  const rng = new Rng(seed);
  const indices = strata.flatMap((s, i) => rng.shuffle([...s.indices]).slice(0, taken[i]!));
  return { indices: indices.sort((a, b) => a - b), taken };
}

/**
 * Splits the dataset into a training pool and a held-out evaluation set (a stratified `evalFraction`, at least
 * one example when the dataset has two or more; none otherwise).
 */
export function holdOut(strata: readonly Stratum[], evalFraction: number, seed: number): { train: number[]; eval: number[] } {
  const all = strata.flatMap((s) => s.indices).sort((a, b) => a - b);
  if (evalFraction <= 0 || all.length < 2) return { train: all, eval: [] };
  const { indices } = stratifiedSample(strata, Math.min(evalFraction, 0.5), seed ^ 0x5bd1e995);
  const held = new Set(indices);
  return { train: all.filter((i) => !held.has(i)), eval: indices };
}
