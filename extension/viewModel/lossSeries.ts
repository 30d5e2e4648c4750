/**
 * The live training curve: points appended from trainProgress messages, with a new run started whenever the
 * step goes backwards, and min/max thinning so a long run still draws in a few hundred segments.
 */

/** One reported training step. */
export interface LossPoint {
  step: number;
  loss: number;
}

/** The training run being shown. */
export interface LossSeries {
  points: LossPoint[];
  totalSteps: number;
  lastLr: number;
  lastTokensPerSecond: number;
}

/** An empty series. */
export function emptyLossSeries(): LossSeries {
  return { points: [], totalSteps: 0, lastLr: 0, lastTokensPerSecond: 0 };
}

/** Returns the series with one step added; a step not after the last one starts a fresh run. */
export function appendLoss(series: LossSeries, p: { step: number; totalSteps: number; loss: number; lr: number; tokensPerSecond: number }): LossSeries {
  const last = series.points[series.points.length - 1];
  const points = last !== undefined && p.step <= last.step ? [] : series.points;
  points.push({ step: p.step, loss: p.loss });
  return { points, totalSteps: Math.max(p.totalSteps, p.step), lastLr: p.lr, lastTokensPerSecond: p.tokensPerSecond };
}

/**
 * Thins `points` to at most about 2 × `buckets` points, keeping each bucket's lowest and highest loss in step
 * order, so spikes stay visible however long the run.
 */
export function thinLoss(points: readonly LossPoint[], buckets: number): LossPoint[] {
  if (points.length <= 2 * buckets) return [...points];
  const out: LossPoint[] = [];
  const size = points.length / buckets;
  for (let b = 0; b < buckets; b++) {
    const slice = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (slice.length === 0) continue;
    let lo = slice[0] as LossPoint;
    let hi = lo;
    for (const p of slice) {
      if (p.loss < lo.loss) lo = p;
      if (p.loss > hi.loss) hi = p;
    }
    if (lo === hi) out.push(lo);
    else out.push(...(lo.step < hi.step ? [lo, hi] : [hi, lo]));
  }
  return out;
}
