/**
 * Learning-rate schedules as Hugging Face's get_scheduler builds them: linear warm-up from 0, then linear decay
 * to 0, cosine decay to 0, or constant.
 */

/** The schedule kinds. */
export type ScheduleKind = "linear" | "cosine" | "constant";

/** The learning rate for optimiser step `step` (0-based) of `total`. */
export function learningRate(kind: ScheduleKind, baseLr: number, step: number, total: number, warmup: number): number {
  if (step < warmup) return (baseLr * step) / Math.max(1, warmup);
  if (kind === "constant") return baseLr;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === "linear") return baseLr * Math.max(0, 1 - progress);
  return baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
