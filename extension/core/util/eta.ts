/**
 * Time left in a long run, estimated by whoever shows progress (the CLI's bar, the extension's notification) from
 * the updates the engine reports, so every command gets the same estimate without computing one itself. Pure
 * apart from the clock, which tests replace.
 */

/** Seconds of progress needed before an estimate is shown: the first batches include set-up and warm-up. */
const SETTLE_SECONDS = 1;

/**
 * Estimates the seconds left from the average rate since the first update. A run whose fraction goes back (a new
 * phase restarting its count) starts a new estimate.
 */
export class EtaClock {
  private start: { t: number; frac: number } | undefined;
  private last = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Seconds left after reaching `step` of `total`, or undefined while it is too early to tell. */
  secondsLeft(step: number, total: number): number | undefined {
    const frac = total > 0 ? Math.min(1, Math.max(0, step / total)) : 0;
    const t = this.now() / 1000;
    const restarted = frac < this.last;
    this.last = frac;
    if (!this.start || restarted) {
      this.start = { t, frac };
      return frac >= 1 ? 0 : undefined;
    }
    if (frac >= 1) return 0;
    const elapsed = t - this.start.t;
    const done = frac - this.start.frac;
    if (elapsed < SETTLE_SECONDS || done <= 0) return undefined;
    return (elapsed / done) * (1 - frac);
  }
}

/** "8 s", "2 min 05 s", "1 h 04 min"; "?" for a value that is not a duration. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

/** "about 2 min 05 s left", "almost done", "done", or "estimating time left" before the first estimate. */
export function etaText(seconds: number | undefined): string {
  if (seconds === undefined) return "estimating time left";
  if (seconds === 0) return "done";
  if (seconds < 1) return "almost done";
  return `about ${formatDuration(seconds)} left`;
}

/** The parts of a progress line: how far (percent), what is happening, throughput, time left. */
export interface ProgressParts {
  percent: number;
  what?: string;
  rate?: string;
  eta: string;
}

/** Splits an update into the parts every progress display shows. */
export function progressParts(u: { step: number; total: number; message?: string; tokensPerSecond?: number }, secondsLeft: number | undefined): ProgressParts {
  const percent = u.total > 0 ? Math.min(100, Math.max(0, (100 * u.step) / u.total)) : 0;
  const rate = u.tokensPerSecond !== undefined && Number.isFinite(u.tokensPerSecond) ? `${Math.round(u.tokensPerSecond).toLocaleString("en-US")} tok/s` : undefined;
  return { percent, ...(u.message ? { what: u.message } : {}), ...(rate ? { rate } : {}), eta: etaText(secondsLeft) };
}

/** "42% · running the model: 120/300 tokens · 1,234 tok/s · about 12 s left". */
export function progressLine(p: ProgressParts): string {
  return [`${Math.floor(p.percent)}%`, p.what, p.rate, p.eta].filter(Boolean).join(" · ");
}
