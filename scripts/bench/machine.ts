/**
 * What every benchmark's JSON starts with: which bench, when, on what machine, how busy it was and the command
 * line, so that a figure in the docs (rendered from the JSON by scripts/docsBench.ts) always says where it
 * comes from.
 */
import * as os from "node:os";

/** The bench JSON format's version; docsBench refuses others. */
export const BENCH_JSON_VERSION = 1;

/** The machine a benchmark ran on. */
export interface BenchMachine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  platform: string;
  node: string;
  onnxruntime: string;
}

/** The header of a bench JSON. */
export interface BenchHeader {
  bench: string;
  version: number;
  /** ISO time the run started. */
  date: string;
  machine: BenchMachine;
  /** 1-, 5- and 15-minute load averages at the start: how much other work shared the machine. */
  loadAverage: number[];
  /** The command as run, e.g. `npm run bench -- --seq 256 --json docs/bench/profile.json`. */
  command: string;
}

/** The header for a bench named `bench`, run now as `script` (e.g. `npm run bench`) with this process's arguments. */
export function benchHeader(bench: string, script: string): BenchHeader {
  const cpus = os.cpus();
  return {
    bench,
    version: BENCH_JSON_VERSION,
    date: new Date().toISOString(),
    machine: {
      cpu: cpus[0]?.model.trim() ?? "unknown CPU",
      cores: cpus.length,
      memoryBytes: os.totalmem(),
      platform: `${process.platform}-${process.arch}`,
      node: process.version,
      onnxruntime: (require("onnxruntime-node/package.json") as { version: string }).version,
    },
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    command: process.argv.length > 2 ? `${script} -- ${process.argv.slice(2).join(" ")}` : script,
  };
}
