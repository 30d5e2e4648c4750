/**
 * The CPU's arithmetic peak for the benchmarks' "% of peak": measured by a multiply-add micro-benchmark
 * (cpuPeak.c, compiled on the fly with the system's C compiler, -O2 -march=native, one thread per core, best of
 * several runs), or, where no compiler works, estimated from /proc/cpuinfo as cores × clock × vector lanes × 2
 * FMA units × 2. The result says which of the two it is.
 *
 * Usage: node out/scripts/bench/cpuPeak.js [--threads N] [--repeats 5] [--cc cc]
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

/** A peak and how it was obtained. */
export interface CpuPeak {
  /** fp32 GFLOP/s over `threads` cores (an FMA counts 2). */
  fp32Gflops: number;
  /** int8 GOP/s (a u8×s8 multiply-add counts 2), where the CPU has AVX-512 VNNI. */
  int8Gops?: number;
  threads: number;
  /** "measured" (micro-benchmark) or "estimated" (from /proc/cpuinfo). */
  method: "measured" | "estimated";
  /** One line on how: the compiler and vector width, or the formula with its numbers. */
  how: string;
}

/** Options of the detection. */
export interface CpuPeakOptions {
  /** Threads, one per core (default: the logical CPUs, which on the benchmark machines are cores). */
  threads?: number;
  repeats?: number;
  cc?: string;
  /** Where the compiled program is kept between runs (default: the OS temp folder). */
  buildDir?: string;
}

/** Measures the peak, falling back to the estimate when the program cannot be compiled or run. */
export function detectCpuPeak(opts: CpuPeakOptions = {}): CpuPeak {
  const threads = opts.threads ?? os.cpus().length;
  const measured = measurePeak(threads, opts);
  if ("fp32Gflops" in measured) return measured;
  const est = estimatePeak(threads);
  return { ...est, how: `${est.how} (micro-benchmark unavailable: ${measured.error})` };
}

/** Compiles and runs cpuPeak.c; returns the figures or why it could not. */
export function measurePeak(threads: number, opts: CpuPeakOptions = {}): CpuPeak | { error: string } {
  const source = findSource();
  if (!source) return { error: "cpuPeak.c not found beside the scripts" };
  const cc = opts.cc ?? process.env.CC ?? "cc";
  const version = spawnSync(cc, ["--version"], { encoding: "utf8" });
  if (version.status !== 0) return { error: `no C compiler (${cc})` };
  const flags = ["-O2", "-march=native", "-pthread"];
  const text = fs.readFileSync(source, "utf8");
  const tag = crypto.createHash("sha256").update(text + version.stdout + flags.join(" ")).digest("hex").slice(0, 12);
  const dir = opts.buildDir ?? path.join(os.tmpdir(), "lora-drop-cpu-peak");
  const exe = path.join(dir, `cpuPeak-${tag}`);
  if (!fs.existsSync(exe)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${exe}.tmp-${process.pid}`;
    const built = spawnSync(cc, [...flags, source, "-o", tmp], { encoding: "utf8" });
    if (built.status !== 0) return { error: `${cc} failed: ${built.stderr.trim().split("\n")[0] ?? ""}` };
    fs.renameSync(tmp, exe);
  }
  // All cores at once, and one core times the cores: on a machine shared with other work the single thread more
  // often finds a free core, so the larger of the two is the better estimate of the idle machine's peak.
  const all = runPeak(exe, threads, opts.repeats ?? 5);
  const one = threads > 1 ? runPeak(exe, 1, opts.repeats ?? 5) : all;
  if (!all || !one) return { error: "the micro-benchmark failed" };
  const scaledOne = threads > 1 && one.fp32_gflops * threads > all.fp32_gflops;
  const r = scaledOne ? { ...one, fp32_gflops: one.fp32_gflops * threads, int8_gops: one.int8_gops && one.int8_gops * threads } : all;
  const ccName = version.stdout.split("\n")[0]!.trim();
  return {
    fp32Gflops: r.fp32_gflops, int8Gops: r.int8_gops, threads, method: "measured",
    how: `FMA${r.int8_gops ? " and VNNI" : ""} chains, ${r.width}, ${scaledOne ? `1 thread × ${threads} cores (all ${threads} at once: ${all.fp32_gflops.toFixed(0)})` : `${threads} threads`}, ` +
      `best of ${opts.repeats ?? 5} (${ccName} ${flags.join(" ")})`,
  };
}

/** One run of the compiled micro-benchmark. */
function runPeak(exe: string, threads: number, repeats: number): { width: string; fp32_gflops: number; int8_gops?: number } | undefined {
  const run = spawnSync(exe, [String(threads), String(repeats)], { encoding: "utf8" });
  return run.status === 0 ? JSON.parse(run.stdout.trim()) as { width: string; fp32_gflops: number; int8_gops?: number } : undefined;
}

/**
 * cores × clock × fp32 lanes × 2 FMA units × 2 FLOP, from /proc/cpuinfo (Linux). The clock is the one the kernel
 * reports (often the base clock under a hypervisor, so the estimate can be low); AMD Zen 4 (family 25) runs
 * AVX-512 on 256-bit units, so it counts 8 lanes. int8 with VNNI: 4 multiply-adds per fp32 lane.
 */
export function estimatePeak(threads: number, cpuinfo = readCpuinfo()): CpuPeak {
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, "m").exec(cpuinfo)?.[1]?.trim() ?? "";
  const flags = new Set(field("flags").split(/\s+/));
  const mhz = Number(field("cpu MHz")) || 2000;
  const zen4 = field("vendor_id") === "AuthenticAMD" && field("cpu family") === "25";
  const lanes = flags.has("avx512f") ? (zen4 ? 8 : 16) : flags.has("fma") ? 8 : 4;
  const fp32 = (threads * mhz * lanes * 2 * 2) / 1000;
  return {
    fp32Gflops: fp32, int8Gops: flags.has("avx512_vnni") || flags.has("avx_vnni") ? 4 * fp32 : undefined, threads, method: "estimated",
    how: `${threads} cores × ${(mhz / 1000).toFixed(2)} GHz × ${lanes} fp32 lanes × 2 FMA units × 2 (from /proc/cpuinfo)`,
  };
}

function readCpuinfo(): string {
  try {
    return fs.readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}

/** cpuPeak.c in the source tree (this file runs from out/scripts/bench/). */
function findSource(): string | undefined {
  const candidates = [path.join(__dirname, "cpuPeak.c"), path.join(__dirname, "..", "..", "..", "scripts", "bench", "cpuPeak.c")];
  return candidates.find((c) => fs.existsSync(c));
}

/** One line describing a peak. */
export function describePeak(p: CpuPeak): string {
  return `fp32 ${p.fp32Gflops.toFixed(0)} GFLOP/s${p.int8Gops ? `, int8 ${p.int8Gops.toFixed(0)} GOP/s` : ""} (${p.method}: ${p.how})`;
}

if (require.main === module) {
  const { values: a } = parseArgs({ options: { threads: { type: "string" }, repeats: { type: "string" }, cc: { type: "string" } } });
  const opts = { threads: a.threads ? Number(a.threads) : undefined, repeats: a.repeats ? Number(a.repeats) : undefined, cc: a.cc };
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`peak: ${describePeak(detectCpuPeak(opts))}`);
  console.log(`estimate for comparison: ${describePeak(estimatePeak(opts.threads ?? os.cpus().length))}`);
}
