/**
 * Terminal plumbing shared by the CLI commands: a progress bar (cli-progress) on a TTY, plain lines otherwise,
 * SIGINT mapped to an AbortSignal, and the rendering of engine errors as one clear line.
 */
import { SingleBar, Presets } from "cli-progress";
import { Progress, Logger, RunContext } from "../core/util/progress";
import { isLoraDropError } from "../core/util/errors";
import { EtaClock, progressLine, progressParts } from "../core/util/eta";

/**
 * A progress reporter for the terminal: what is happening, how far along, and the time left. A bar on a
 * terminal; otherwise (a pipe, a CI log) one line at the start, every 10 % and at the end. Call `stop()` when the
 * phase ends.
 */
export function terminalProgress(label: string, quiet = false): Progress & { stop(): void } {
  if (quiet) return { report() {}, stop() {} };
  const clock = new EtaClock();
  if (!process.stderr.isTTY) {
    let lastPct = -1;
    return {
      report(u) {
        const parts = progressParts(u, clock.secondsLeft(u.step, u.total));
        if (lastPct < 0 || parts.percent >= lastPct + 10 || (u.step === u.total && parts.percent > lastPct)) {
          lastPct = Math.floor(parts.percent);
          process.stderr.write(`${label}: ${progressLine(parts)}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% | {msg} | {eta}`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    report(u) {
      const parts = progressParts(u, clock.secondsLeft(u.step, u.total));
      const payload = { msg: [parts.what, parts.rate].filter(Boolean).join(", "), eta: parts.eta };
      if (!started) { bar.start(u.total, u.step, payload); started = true; }
      else bar.update(u.step, payload);
      bar.setTotal(u.total);
    },
    stop() { if (started) bar.stop(); },
  };
}

/** A logger writing to stderr when verbose. */
export function terminalLogger(verbose: boolean): Logger {
  return {
    info(m) { if (verbose) process.stderr.write(`${m}\n`); },
    warn(m) { process.stderr.write(`warning: ${m}\n`); },
  };
}

/** A RunContext whose signal fires on Ctrl-C (a second Ctrl-C exits at once). */
export function terminalContext(label: string, opts: { quiet?: boolean; verbose?: boolean } = {}): RunContext & { done(): void } {
  const controller = new AbortController();
  const progress = terminalProgress(label, opts.quiet);
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\ncancelling… (Ctrl-C again to exit at once)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  return {
    progress, signal: controller.signal, log: terminalLogger(opts.verbose ?? false),
    done() { progress.stop(); process.off("SIGINT", onSigint); },
  };
}

/** Prints an error as one line (engine errors) or with its stack (bugs), and returns the exit code. */
export function reportError(e: unknown): number {
  if (isLoraDropError(e)) {
    process.stderr.write(`error [${e.code}]: ${e.message}\n`);
    return e.code === "CANCELLED" ? 130 : 2;
  }
  process.stderr.write(`internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}

/** Formats a fraction as a percentage. */
export function pct(x: number, digits = 1): string {
  return `${(100 * x).toFixed(digits)}%`;
}
