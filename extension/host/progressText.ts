/**
 * Converts the engine's absolute progress (step of total) into what VS Code's progress notification takes: an
 * increment since the previous report and a short message saying how far along, what is happening, the
 * throughput and the time left. Pure apart from the clock of the time estimate.
 */
import type { ProgressUpdate } from "../core/util/progress";
import { EtaClock, progressLine, progressParts } from "../core/util/eta";

/** One report for `Progress<{message, increment}>`. */
export interface NotificationReport {
  message: string;
  increment: number;
}

/** Tracks the percentage already reported, so each report carries only the increment, and estimates the time left. */
export class ProgressTracker {
  private reported = 0;
  private readonly clock: EtaClock;

  constructor(now?: () => number) {
    this.clock = new EtaClock(now);
  }

  /** The report for `update`; the increments over a run add up to at most 100. */
  next(update: ProgressUpdate): NotificationReport {
    const parts = progressParts(update, this.clock.secondsLeft(update.step, update.total));
    // A later phase may restart its count (e.g. a second pass); never report a negative increment.
    const increment = Math.max(0, parts.percent - this.reported);
    this.reported = Math.max(this.reported, parts.percent);
    return { message: progressLine(parts), increment };
  }
}
