/**
 * The small interfaces through which the core reports to whoever drives it (CLI, extension host, tests).
 * The core never prints: it reports progress and log lines through these.
 */

/** One progress update: `step` of `total` units of work done. */
export interface ProgressUpdate {
  step: number;
  total: number;
  message?: string;
  /** Throughput of the current phase, when meaningful. */
  tokensPerSecond?: number;
}

/** Receives progress updates. */
export interface Progress {
  report(update: ProgressUpdate): void;
}

/** Receives log lines. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** What every long-running core operation accepts from its caller. */
export interface RunContext {
  progress?: Progress;
  signal?: AbortSignal;
  log?: Logger;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { info() {}, warn() {} };

/**
 * Progress of a run made of `phaseCount` phases of equal weight, each reporting its own step/total: the update
 * of phase `phase` (0-based) as a fraction of the whole run, in thousandths per phase.
 */
export function phasedProgress(phase: number, phaseCount: number, update: ProgressUpdate, label: string): ProgressUpdate {
  const slice = 1000;
  const within = Math.min(1, Math.max(0, update.step / Math.max(update.total, 1)));
  return {
    step: phase * slice + Math.round(slice * within),
    total: phaseCount * slice,
    message: `${label}${update.message ? `: ${update.message}` : ""}`,
    ...(update.tokensPerSecond !== undefined ? { tokensPerSecond: update.tokensPerSecond } : {}),
  };
}
