/**
 * Waiting for a quiet machine before a measurement, for benchmarks run on machines shared with other work.
 */
import * as fs from "node:fs";

/** Share of CPU time idle over the next `ms` milliseconds (Linux /proc/stat), or undefined elsewhere. */
export function idleShare(ms: number): number | undefined {
  const read = () => {
    if (!fs.existsSync("/proc/stat")) return undefined;
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((x, y) => x + y, 0) };
  };
  const a = read();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const b = read();
  return a && b && b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : undefined;
}

/** Waits up to `seconds` until the CPUs were ≥ 85 % idle over 2 s; returns the idle share seen last (or undefined). */
export function waitIdle(seconds: number): number | undefined {
  if (seconds <= 0) return undefined;
  const until = Date.now() + seconds * 1000;
  let idle = idleShare(2000);
  while (idle !== undefined && idle < 0.85 && Date.now() < until) idle = idleShare(2000);
  return idle;
}

/** Waits as waitIdle does; returns a note for a measurement on how idle the CPUs were ("" when not asked). */
export function waitIdleNote(seconds: number): string {
  const idle = waitIdle(seconds);
  return idle === undefined ? "" : `, CPUs ${(100 * idle).toFixed(0)} % idle before`;
}

/** The 1-minute load average as text, for the notes of a measurement. */
export function loadAverage(): string {
  try {
    return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}
