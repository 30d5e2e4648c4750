/**
 * Terminal plumbing shared by the CLI commands: a progress bar (cli-progress) on a TTY, plain lines otherwise,
 * SIGINT mapped to an AbortSignal, and the rendering of engine errors as one clear line.
 */
import { SingleBar, Presets } from "cli-progress";
import { Progress, Logger, RunContext } from "../core/util/progress";
import { isLoraDropError } from "../core/util/errors";

/** A progress reporter for the terminal. Call `stop()` when the phase ends. */
export function terminalProgress(label: string, quiet = false): Progress & { stop(): void } {
  if (quiet) return { report() {}, stop() {} };
  if (!process.stderr.isTTY) {
    let lastPct = -1;
    return {
      report(u) {
        const pct = Math.floor((100 * u.step) / Math.max(u.total, 1));
        if (pct >= lastPct + 10 || u.step === u.total) {
          lastPct = pct;
          process.stderr.write(`${label}: ${pct}%${u.message ? ` ${u.message}` : ""}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total} | {msg}`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    report(u) {
      const msg = [u.message, u.tokensPerSecond !== undefined ? `${u.tokensPerSecond.toFixed(0)} tok/s` : ""].filter(Boolean).join(" ");
      if (!started) { bar.start(u.total, u.step, { msg }); started = true; }
      else bar.update(u.step, { msg });
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
