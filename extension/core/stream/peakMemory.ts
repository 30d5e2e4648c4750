/**
 * Peak resident memory of a run, sampled from process.memoryUsage().rss on a timer (which fires while ORT
 * computes off the main thread) and at the points the caller knows are high (after loading a block).
 */

/** Tracks the highest RSS seen between start() and stop(). */
export class PeakRss {
  private timer: NodeJS.Timeout | undefined;
  /** Highest RSS sampled so far, in bytes. */
  peak = 0;

  /** Starts sampling every `intervalMs`. */
  start(intervalMs = 25): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes one sample now. */
  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }

  /** Stops sampling and returns the peak in bytes. */
  stop(): number {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.peak;
  }
}

/** The process's lifetime maximum RSS in bytes, as the OS reports it (getrusage). */
export function maxRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
