/**
 * Batching: right-padded token id and mask arrays for a group of tokenised examples.
 */
import type { TokenizedExample } from "./dataset";

/** A padded batch, row-major [batch, seq]. */
export interface Batch {
  batch: number;
  seq: number;
  ids: number[];
  /** 1 for real tokens, 0 for padding. */
  mask: number[];
  /** 1 where the token is a loss target (see TokenizedExample.lossMask), 0 elsewhere and at padding. */
  targets: number[];
  /** Token type (segment) ids, 0 at padding and for examples without any (single sentences). */
  typeIds: number[];
  examples: TokenizedExample[];
}

/** Pads examples on the right to the longest one. */
export function makeBatch(examples: TokenizedExample[], padId = 0): Batch {
  const seq = Math.max(...examples.map((e) => e.ids.length));
  const ids: number[] = [];
  const mask: number[] = [];
  const targets: number[] = [];
  const typeIds: number[] = [];
  for (const e of examples) {
    for (let t = 0; t < seq; t++) {
      const real = t < e.ids.length;
      ids.push(real ? e.ids[t]! : padId);
      mask.push(real ? 1 : 0);
      targets.push(real && e.lossMask[t] ? 1 : 0);
      typeIds.push(real ? e.typeIds?.[t] ?? 0 : 0);
    }
  }
  return { batch: examples.length, seq, ids, mask, targets, typeIds, examples };
}

/** Splits examples into consecutive batches of at most `size`, grouping similar lengths to limit padding. */
export function batchesOf(examples: TokenizedExample[], size: number, sortByLength = true): TokenizedExample[][] {
  const order = sortByLength ? [...examples].sort((a, b) => a.ids.length - b.ids.length) : examples;
  const out: TokenizedExample[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}
