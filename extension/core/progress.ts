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
