/**
 * Converts the engine's absolute progress (step of total) into what VS Code's progress notification takes: an
 * increment since the previous report and a short message with the percentage and throughput. Pure.
 */
import type { ProgressUpdate } from "../core/util/progress";

/** One report for `Progress<{message, increment}>`. */
export interface NotificationReport {
  message: string;
  increment: number;
}

/** Tracks the percentage already reported, so each report carries only the increment. */
export class ProgressTracker {
  private reported = 0;

  /** The report for `update`; the increments over a run add up to at most 100. */
  next(update: ProgressUpdate): NotificationReport {
    const pct = update.total > 0 ? Math.min(100, Math.max(0, (100 * update.step) / update.total)) : 0;
    // A later phase may restart its count (e.g. a second pass); never report a negative increment.
    const increment = Math.max(0, pct - this.reported);
    this.reported = Math.max(this.reported, pct);
    return { message: progressMessage(update, pct), increment };
  }
}

/** "42% · 1,234 tok/s · 120/300 tokens". */
export function progressMessage(update: ProgressUpdate, pct: number): string {
  const parts = [`${Math.floor(pct)}%`];
  if (update.tokensPerSecond !== undefined && Number.isFinite(update.tokensPerSecond)) {
    parts.push(`${Math.round(update.tokensPerSecond).toLocaleString("en-US")} tok/s`);
  }
  if (update.message) parts.push(update.message);
  return parts.join(" · ");
}
