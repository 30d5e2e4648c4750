/**
 * llama.cpp as the CPU peer of the profile pass: prompt processing of the same token ids on the benchmark model
 * converted to GGUF (F32, F16, Q8_0, Q4_0), through node-llama-cpp's prebuilt CPU binary, alternated in rounds
 * with our profile pass in fp32 and in quantized precisions (quantPassWorker.ts). Prints tok/s (best), GFLOP/s
 * and % of the measured CPU peak, peak RSS, and how far each quantized profile's importance is from fp32's.
 *
 * node-llama-cpp is not a dependency of the project (with its optional GPU builds it is ~700 MB, and its
 * postinstall may fetch or compile llama.cpp): `--setup` installs it once into .cache/llama-cpp from the npm
 * registry (NODE_LLAMA_CPP_SKIP_DOWNLOAD=true, optional packages omitted, ~85 MB) and takes gguf-py out of the git
 * bundle of llama.cpp the package carries. Nothing is downloaded otherwise; missing pieces skip the llama.cpp rows
 * with a message. Conversion runs /usr/bin/python3 with numpy (gguf_convert.py) once per type.
 *
 * Usage: node out/scripts/bench/llamaCpp.js [--setup] [--types F32,F16,Q8_0,Q4_0] [--ours fp32,int8,int4]
 *        [--seq 256] [--rounds 5] [--reps 3] [--threads 2] [--wait-idle 0] [--json FILE] [--cache DIR]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { Rng } from "../../extension/core/util/random";
import { normalise, selectByThreshold } from "../../extension/core/importance/selection";
import { ensureBenchModel, passFlops, TINYLLAMA_SHAPE } from "./benchModel";
import { describePeak, detectCpuPeak } from "./cpuPeak";
import { loadAverage, waitIdle } from "./idle";
import type { LlamaCppResult } from "./llamaCppWorker";
import type { QuantPassResult } from "./quantPassWorker";

/** The node-llama-cpp release the setup installs (its prebuilt binaries carry their own llama.cpp build). */
const NODE_LLAMA_CPP_VERSION = "3.22.1";
const GIB = 1024 ** 3;

/** One engine of the comparison. */
interface Engine {
  label: string;
  kind: "ours" | "llama.cpp";
  arg: string;
  flops: number;
  best: number;
  rss: number;
  note: string;
  tapsFile?: string;
  /** Ours, quantized: the largest |ΔI| against our fp32 importance, and whether the kept set at T = 0.9 is fp32's. */
  maxImportanceDelta?: number;
  keptEqual?: boolean;
}

/** What `--json` writes: the engines side by side on the same tokens, with the measured peak. */
export interface EngineComparison {
  seq: number;
  threads: number;
  rounds: number;
  peak: ReturnType<typeof detectCpuPeak>;
  /** Why the llama.cpp rows are missing, when they are. */
  llamaCppSkipped?: string;
  engines: (Omit<Engine, "tapsFile" | "best"> & { seconds: number; tokensPerSecond: number; gflops: number })[];
}

function main(): number {
  const { values: a } = parseArgs({
    options: {
      setup: { type: "boolean", default: false }, types: { type: "string", default: "F32,F16,Q8_0,Q4_0" },
      ours: { type: "string", default: "fp32,int8,int4" }, seq: { type: "string", default: "256" },
      rounds: { type: "string", default: "5" }, reps: { type: "string", default: "3" }, threads: { type: "string", default: "2" },
      "wait-idle": { type: "string", default: "0" }, json: { type: "string" }, cache: { type: "string", default: ".cache" },
      python: { type: "string", default: fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3" },
    },
  });
  const cache = path.resolve(a.cache!);
  const lib = path.join(cache, "llama-cpp");
  if (a.setup) return setup(lib);
  const fx = ensureBenchModel(path.join(cache, "bench"), TINYLLAMA_SHAPE, (m) => console.log(m));
  const cfg = loadHfModel(fx.modelDir).config;
  const seq = Number(a.seq);
  const rng = new Rng(1000 + seq);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-llama-"));
  const idsFile = path.join(work, "ids.json");
  fs.writeFileSync(idsFile, JSON.stringify(Array.from({ length: seq }, () => 3 + rng.int(cfg.vocabSize - 3))));
  const lora = TINYLLAMA_SHAPE.loraTargets.map((module) => ({ module, r: TINYLLAMA_SHAPE.loraR }));
  const profileFlops = passFlops(cfg, { seq, batch: 1, layers: cfg.numLayers, lmHead: false, prunedLastLayer: true, lora });
  // llama.cpp's prompt step: every layer whole, logits for the last token only.
  const llamaFlops = passFlops(cfg, { seq, batch: 1, layers: cfg.numLayers, lmHead: false, lora: [] }) + 2 * cfg.hiddenSize * cfg.vocabSize;

  const engines: Engine[] = a.ours!.split(",").filter(Boolean).map((p) => ({
    label: `lora-drop profile ${p}`, kind: "ours", arg: p, flops: profileFlops, best: Infinity, rss: 0, note: "", tapsFile: path.join(work, `taps-${p}.json`),
  }));
  const skip = a.types ? llamaSkipReason(lib, a.python!) : undefined;
  if (skip) console.log(`llama.cpp rows skipped: ${skip}`);
  else if (a.types) {
    for (const type of a.types!.split(",").filter(Boolean)) {
      const gguf = convert(fx.modelDir, path.join(cache, "bench", "gguf"), type, lib, a.python!);
      engines.push({ label: `llama.cpp ${type}`, kind: "llama.cpp", arg: gguf, flops: llamaFlops, best: Infinity, rss: 0, note: "" });
    }
  }
  const peak = detectCpuPeak({ threads: Number(a.threads) });
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}; peak ${describePeak(peak)}`);
  console.log(`seq ${seq}, batch 1, ${a.threads} threads; ${a.rounds} rounds × ${a.reps} runs, engines alternated (order rotated each round); load average ${loadAverage()}`);
  try {
    for (let round = 0; round < Number(a.rounds); round++) {
      for (let j = 0; j < engines.length; j++) {
        const e = engines[(j + round) % engines.length]!;
        const idle = waitIdle(Number(a["wait-idle"]));
        const r = e.kind === "ours"
          ? runJson<QuantPassResult>([path.join(__dirname, "quantPassWorker.js"), "--model", fx.modelDir, "--adapter", fx.adapterDir, "--ids", idsFile,
            "--out", e.tapsFile!, "--precision", e.arg, "--reps", a.reps!, "--threads", a.threads!, "--cache", path.join(cache, "bench", "quant")])
          : runJson<LlamaCppResult>([path.join(__dirname, "llamaCppWorker.js"), "--lib", lib, "--gguf", e.arg, "--ids", idsFile, "--threads", a.threads!, "--reps", a.reps!]);
        e.best = Math.min(e.best, r.best);
        e.rss = Math.max(e.rss, r.peakRssBytes);
        if (round === 0 && "systemInfo" in r) e.note = r.systemInfo.replace(/\s*\|\s*$/, "").replace(/^CPU : /, "");
        console.log(`  round ${round + 1}: ${e.label.padEnd(28)} ${(seq / r.best).toFixed(1).padStart(7)} tok/s (runs ${r.times.map((t) => t.toFixed(2)).join(" ")} s; load ${loadAverage()}${idle !== undefined ? `, ${(100 * idle).toFixed(0)} % idle before` : ""})`);
      }
    }
    printTable(engines, seq, peak.fp32Gflops, peak.int8Gops);
    if (a.json) {
      const out: EngineComparison = {
        seq, threads: Number(a.threads), rounds: Number(a.rounds), peak, ...(skip ? { llamaCppSkipped: skip } : {}),
        engines: engines.map(({ tapsFile: _, best, ...e }) => ({ ...e, seconds: best, tokensPerSecond: seq / best, gflops: e.flops / best / 1e9 })),
      };
      fs.writeFileSync(a.json, JSON.stringify(out, null, 2));
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return 0;
}

/** Why the llama.cpp rows cannot run here, or undefined when they can. */
function llamaSkipReason(lib: string, python: string): string | undefined {
  if (!fs.existsSync(path.join(lib, "node_modules", "node-llama-cpp", "dist", "index.js"))) {
    return `node-llama-cpp is not installed under ${lib}; run \`node out/scripts/bench/llamaCpp.js --setup\` once (needs the npm registry)`;
  }
  if (!fs.existsSync(path.join(lib, "gguf-py", "gguf"))) return `llama.cpp's gguf-py is missing under ${lib}; run --setup again`;
  const probe = spawnSync(python, ["-c", "import numpy"], { encoding: "utf8" });
  if (probe.status !== 0) return `${python} cannot import numpy (apt-get install python3-numpy), needed to write GGUF files`;
  return undefined;
}

/** Installs node-llama-cpp (CPU prebuilt only) into `lib` and extracts gguf-py from its llama.cpp git bundle. */
function setup(lib: string): number {
  const pkg = `@node-llama-cpp/${process.platform === "darwin" ? "mac" : process.platform === "win32" ? "win" : process.platform}-${process.arch}${process.platform === "darwin" && process.arch === "arm64" ? "-metal" : ""}`;
  fs.mkdirSync(lib, { recursive: true });
  if (!fs.existsSync(path.join(lib, "package.json"))) fs.writeFileSync(path.join(lib, "package.json"), JSON.stringify({ private: true, description: "benchmark peer, installed by scripts/bench/llamaCpp.ts --setup" }));
  console.log(`installing node-llama-cpp@${NODE_LLAMA_CPP_VERSION} and ${pkg} into ${lib} (no GPU builds, no postinstall download)`);
  const npm = spawnSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--omit=optional", `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, `${pkg}@${NODE_LLAMA_CPP_VERSION}`],
    { cwd: lib, stdio: "inherit", env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" } });
  if (npm.status !== 0) return 1;
  const bundle = path.join(lib, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  const tmp = fs.mkdtempSync(path.join(lib, ".llama.cpp-"));
  try {
    const clone = spawnSync("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundle, tmp], { stdio: "inherit" });
    if (clone.status !== 0) return 1;
    fs.rmSync(path.join(lib, "gguf-py"), { recursive: true, force: true });
    fs.renameSync(path.join(tmp, "gguf-py"), path.join(lib, "gguf-py"));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`ready: ${lib} (gguf-py from the package's llama.cpp bundle)`);
  return 0;
}

/** The GGUF file of `type`, converted once (again when the model is newer). */
function convert(modelDir: string, dir: string, type: string, lib: string, python: string): string {
  const out = path.join(dir, `bench-${type}.gguf`);
  const modelTime = Math.max(...fs.readdirSync(modelDir).map((f) => fs.statSync(path.join(modelDir, f)).mtimeMs));
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs > modelTime) return out;
  fs.mkdirSync(dir, { recursive: true });
  console.log(`converting the bench model to GGUF ${type} → ${out}`);
  const script = path.join(__dirname, "..", "..", "..", "scripts", "bench", "gguf_convert.py");
  const r = spawnSync(python, [script, "--model", modelDir, "--out", out, "--type", type, "--gguf-py", path.join(lib, "gguf-py")], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`GGUF conversion to ${type} failed`);
  return out;
}

function runJson<T>(args: string[]): T {
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path.basename(args[0]!)} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

/** Per-layer importance I from a taps file (sum over modules and tokens, normalised). */
function importance(file: string): number[] {
  const { taps, tapLayers } = JSON.parse(fs.readFileSync(file, "utf8")) as { taps: number[]; tapLayers: number[] };
  const per = taps.length / tapLayers.length;
  const g = new Array<number>(Math.max(...tapLayers) + 1).fill(0);
  tapLayers.forEach((layer, t) => { for (let i = 0; i < per; i++) g[layer]! += taps[t * per + i]!; });
  return normalise(g);
}

/** Whether an engine's products run on int8 dot products (quantized activations) rather than fp32 FMAs. */
function intCompute(e: Engine): boolean {
  return e.kind === "ours" ? e.arg !== "fp32" : /Q\d/.test(e.label);
}

function printTable(engines: Engine[], seq: number, peak: number, int8Peak?: number): void {
  const fp32 = engines.find((e) => e.kind === "ours" && e.arg === "fp32");
  const ref = fp32?.tapsFile && fs.existsSync(fp32.tapsFile) ? importance(fp32.tapsFile) : undefined;
  const keptRef = ref ? selectByThreshold(ref, 0.9).kept.join() : "";
  console.log(`\n| engine | tok/s (best) | GFLOP/s | % of peak (fp32 ${peak.toFixed(0)}${int8Peak ? `, int8 ${int8Peak.toFixed(0)}` : ""}) | peak RSS | vs fp32 importance |`);
  console.log("|---|---|---|---|---|---|");
  for (const e of engines) {
    let fidelity = "";
    if (ref && e.tapsFile && e !== fp32 && fs.existsSync(e.tapsFile)) {
      const imp = importance(e.tapsFile);
      const maxAbs = Math.max(...imp.map((x, i) => Math.abs(x - ref[i]!)));
      e.maxImportanceDelta = maxAbs;
      e.keptEqual = selectByThreshold(imp, 0.9).kept.join() === keptRef;
      fidelity = `max |ΔI| ${maxAbs.toExponential(1)}, kept set at T=0.9 ${e.keptEqual ? "equal" : "DIFFERS"}`;
    }
    const gflops = e.flops / e.best / 1e9;
    const ofPeak = intCompute(e) && int8Peak ? `${((100 * gflops) / int8Peak).toFixed(0)} % int8` : `${((100 * gflops) / peak).toFixed(0)} % fp32`;
    console.log(`| ${e.label} | ${(seq / e.best).toFixed(1)} | ${gflops.toFixed(0)} | ${ofPeak} | ${(e.rss / GIB).toFixed(2)} GiB | ${fidelity} |`);
  }
  const notes = engines.filter((e) => e.note).map((e) => e.note);
  if (notes[0]) console.log(`\nllama.cpp CPU features: ${notes[0]}`);
}

process.exitCode = main();
