/**
 * `npm run bench`: profiling throughput, achieved GFLOP/s and peak memory of the engine on a random model of
 * TinyLlama-1.1B's shape (fp32), beside a PyTorch CPU reference running the same pass on the same weights in the
 * same run. Each measurement runs in its own process so its peak RSS is its own.
 *
 * Passes: `profile` is what `lora-drop profile` runs (layers up to the last LoRA layer, LoRA norm taps, no LM head);
 * `forward` adds the final norm and the logits, the like-for-like comparison with a full PyTorch forward.
 *
 * Usage: npm run bench -- [--seq 256[,128,512]] [--pass profile,forward] [--reps 3] [--no-torch] [--python PATH]
 *        [--peak-gflops auto|N] [--threads N] [--prepack 0|1] [--config key=value ...] [--cache DIR] [--json FILE]
 *        [--wait-idle SECONDS] [--device cpu|webgpu|cuda] [--torch-device cpu|cuda]
 *        [--engine onnx|torch] [--rounds 2] [--dtype float32|bfloat16|float16] [--precision fp32,int8,int4] [--llama-cpp]
 * `--precision` and `--llama-cpp` add the engine comparison (bench/llamaCpp.ts): our profile pass at each precision
 * (as `lora-drop profile --precision` runs it) beside llama.cpp's prompt processing in F32, F16, Q8_0 and Q4_0 on the
 * same tokens (first --seq), alternated in rounds, with the measured peak and each precision's importance against
 * fp32's. llama.cpp is installed on demand into .cache/llama-cpp (preferring the npm cache); where it cannot be,
 * its rows are skipped with the reason, printed and kept in the JSON.
 * `--device` picks onnxruntime's execution provider and `--torch-device` the PyTorch reference's device (a GPU
 * comparison: `--device webgpu --torch-device cuda`); the defaults compare the two on the CPU.
 * `--engine torch` adds LoRA-drop's torch engine (the profile as `lora-drop profile --engine torch` runs it, on
 * `--torch-device` in `--dtype`) beside the onnx engine: the two alternate, `--rounds` times each, so a load
 * change on a shared machine hits both; the best round of each is reported, every round is in the JSON. The
 * torch engine needs transformers and peft beside torch (source ../shared/pyenv/env.sh, or pass --python).
 * `--peak-gflops auto` (the default) measures the CPU's fp32 peak with a short FMA micro-benchmark (cpuPeak.ts),
 * estimating it from /proc/cpuinfo where no C compiler is found; a number sets it instead.
 * On a shared machine, `--wait-idle 120` waits (up to that long) before each measurement until the CPUs were at
 * least 85 % idle over two seconds; the table's notes say how idle they were.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { loadHfModel } from "../extension/core/models/hfModel";
import { Rng } from "../extension/core/util/random";
import { ensureBenchModel, describeShape, passFlops, TINYLLAMA_SHAPE } from "./bench/benchModel";
import type { OrtWorkerResult } from "./bench/ortWorker";
import { benchHeader } from "./bench/machine";
import { waitIdleNote } from "./bench/idle";
import { torchEngineProfile, type TorchEngineResult } from "./bench/torchEngine";
import type { TorchDevice, TorchDtype } from "../extension/core/torch/protocol";
import { describePeak, detectCpuPeak } from "./bench/cpuPeak";
import type { EngineComparison } from "./bench/llamaCpp";

const GIB = 1024 ** 3;

/** One engine's measurement of one pass: the onnx engine, the torch engine, or the plain PyTorch reference. */
interface Measurement {
  engine: "onnxruntime" | "torch engine" | "pytorch";
  seq: number;
  pass: "profile" | "forward";
  seconds: number;
  tokensPerSecond: number;
  gflops: number;
  peakRssBytes: number;
  outFile: string;
  note?: string;
}

async function main(): Promise<number> {
  const header = benchHeader("profile", "npm run bench");
  const { values: a } = parseArgs({
    options: {
      seq: { type: "string", default: "256" }, pass: { type: "string", default: "profile,forward" },
      reps: { type: "string", default: "3" }, "no-torch": { type: "boolean", default: false }, python: { type: "string" },
      "peak-gflops": { type: "string", default: "auto" }, threads: { type: "string" }, prepack: { type: "string" },
      config: { type: "string", multiple: true, default: [] },
      cache: { type: "string", default: path.join(".cache", "bench") }, json: { type: "string" }, "wait-idle": { type: "string", default: "0" },
      device: { type: "string", default: "cpu" }, "torch-device": { type: "string", default: "cpu" },
      engine: { type: "string", default: "onnx" }, rounds: { type: "string", default: "2" }, dtype: { type: "string", default: "float32" },
      precision: { type: "string" }, "llama-cpp": { type: "boolean", default: false },
    },
  });
  const withTorchEngine = a.engine === "torch";
  const seqs = a.seq.split(",").map(Number);
  const passes = a.pass.split(",") as ("profile" | "forward")[];
  const detected = a["peak-gflops"] === "auto" ? detectCpuPeak() : undefined;
  const peak = detected ? detected.fp32Gflops : Number(a["peak-gflops"]);
  const shape = TINYLLAMA_SHAPE;
  const fx = ensureBenchModel(path.resolve(a.cache), shape, (m) => console.log(m));
  const model = loadHfModel(fx.modelDir);
  const cfg = model.config;
  const lora = shape.loraTargets.map((module) => ({ module, r: shape.loraR }));

  const python = a.python ?? process.env.LORA_DROP_BENCH_PYTHON ?? (fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
  const torchEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? "2", OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? "Haswell" };
  let torchSkip = a["no-torch"] ? "--no-torch given" : undefined;
  if (!torchSkip) {
    const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8", env: torchEnv });
    if (probe.status !== 0) {
      torchSkip = `${python} cannot import torch; install Debian's python3-torch and libopenblas0-pthread ` +
        "(apt-get install python3-torch libopenblas0-pthread) or pass --python";
    }
  }

  console.log(`model: ${describeShape(shape)}; weights ${(fx.weightBytes / GIB).toFixed(2)} GiB; batch 1`);
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / GIB).toFixed(0)} GiB; ` +
    `peak taken as ${peak.toFixed(0)} GFLOP/s fp32${detected ? `, ${describePeak(detected)}` : " (--peak-gflops)"}; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const ortFlags = [
    ...(a.threads ? ["--threads", a.threads] : []), ...(a.prepack ? ["--prepack", a.prepack] : []),
    ...a.config.flatMap((c) => ["--config", c]), "--device", a.device!,
  ];
  console.log(`onnxruntime settings: ${ortFlags.length ? ortFlags.join(" ") : "engine defaults"}`);
  if (torchSkip) console.log(`PyTorch reference skipped: ${torchSkip}`);
  else console.log(`PyTorch reference: ${python}, torch.set_num_threads(1), OPENBLAS_NUM_THREADS=${torchEnv.OPENBLAS_NUM_THREADS}, OPENBLAS_CORETYPE=${torchEnv.OPENBLAS_CORETYPE}`);

  if (withTorchEngine) console.log(`torch engine: ${python}, device ${a["torch-device"]}, ${a.dtype}; alternating with onnxruntime, ${a.rounds} rounds each`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-bench-"));
  const results: Measurement[] = [];
  const agreement: { seq: number; pass: string; taps: number; logits?: number }[] = [];
  const rounds: { seq: number; pass: string; engine: string; tokensPerSecond: number; peakRssBytes: number }[] = [];
  let blasNote = "";
  try {
    for (const seq of seqs) {
      const rng = new Rng(1000 + seq);
      const idsFile = path.join(work, `ids-${seq}.json`);
      fs.writeFileSync(idsFile, JSON.stringify(Array.from({ length: seq }, () => 3 + rng.int(cfg.vocabSize - 3))));
      for (const pass of passes) {
        const flops = passFlops(cfg, { seq, batch: 1, layers: cfg.numLayers, lmHead: pass === "forward", prunedLastLayer: pass === "profile", lora });
        const common = ["--model", fx.modelDir, "--adapter", fx.adapterDir, "--ids", idsFile, "--mode", pass, "--reps", a.reps!];
        const ortOut = path.join(work, `ort-${pass}-${seq}.json`);
        const worker = path.join(__dirname, "bench", "ortWorker.js");
        // The torch engine profiles (it has no separate forward pass): there the engines alternate.
        const alternate = withTorchEngine && pass === "profile";
        let o: OrtWorkerResult | undefined;
        let te: TorchEngineResult | undefined;
        let idleOrt = "";
        for (let round = 0; round < (alternate ? Number(a.rounds) : 1); round++) {
          idleOrt = waitIdleNote(Number(a["wait-idle"]));
          const ro = runJson<OrtWorkerResult>(process.execPath, [worker, ...common, "--out", ortOut, ...ortFlags], process.env);
          console.log(`  seq ${seq} ${pass}: onnxruntime ${(seq / ro.best).toFixed(1)} tok/s`);
          rounds.push({ seq, pass, engine: "onnxruntime", tokensPerSecond: seq / ro.best, peakRssBytes: ro.peakRssBytes });
          if (!o || ro.best < o.best) o = ro;
          if (!alternate) continue;
          waitIdleNote(Number(a["wait-idle"]));
          const rt = await torchEngineProfile({
            modelDir: fx.modelDir, adapterDir: fx.adapterDir, idsFile, reps: Number(a.reps), python, env: torchEnv,
            device: a["torch-device"] as TorchDevice, dtype: a.dtype as TorchDtype, ...(a.threads ? { threads: Number(a.threads) } : {}),
          });
          console.log(`  seq ${seq} ${pass}: torch engine ${(seq / rt.best).toFixed(1)} tok/s`);
          rounds.push({ seq, pass, engine: "torch engine", tokensPerSecond: seq / rt.best, peakRssBytes: rt.peakRssBytes });
          if (!te || rt.best < te.best) te = rt;
        }
        results.push(measurement("onnxruntime", seq, pass, o!.best, o!.peakRssBytes, flops, ortOut, `${o!.device}, session ${o!.sessionSeconds.toFixed(1)} s${idleOrt}`));
        if (te) results.push(measurement("torch engine", seq, pass, te.best, te.peakRssBytes, flops, "", te.device));
        if (torchSkip) continue;
        const torchOut = path.join(work, `torch-${pass}-${seq}.json`);
        const script = path.join(__dirname, "..", "..", "scripts", "bench", "torch_reference.py");
        const idleTorch = waitIdleNote(Number(a["wait-idle"]));
        const t = runJson<{ best: number; peak_rss_bytes: number; blas: string[]; torch: string; gpu_peak_bytes: number | null }>(python, [script, ...common, "--device", a["torch-device"]!, "--out", torchOut], torchEnv);
        blasNote = `torch ${t.torch}, BLAS loaded: ${t.blas.join(", ") || "none found"}`;
        if (!t.blas.some((b) => b.includes("openblas"))) blasNote += " — WARNING: not OpenBLAS, the reference is not the fair one (see docs/benchmarks.md)";
        console.log(`  seq ${seq} ${pass}: pytorch ${(seq / t.best).toFixed(1)} tok/s`);
        const gpuMem = t.gpu_peak_bytes ? `, GPU peak ${(t.gpu_peak_bytes / GIB).toFixed(2)} GiB` : "";
        results.push(measurement("pytorch", seq, pass, t.best, t.peak_rss_bytes, flops, torchOut, `${a["torch-device"]}${gpuMem}${idleTorch}`));
      }
    }
    console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    if (blasNote) console.log(blasNote);
    console.log();
    printTable(results, peak, fx.weightBytes, agreement);
    const comparison = a.precision || a["llama-cpp"]
      ? engineComparison({ precisions: a.precision ?? "fp32", llamaCpp: a["llama-cpp"]!, seq: seqs[0]!, reps: a.reps!, threads: a.threads ?? String(os.cpus().length), cacheRoot: path.dirname(path.resolve(a.cache)), work })
      : undefined;
    if (a.json) {
      const measured = results.map(({ outFile: _, ...m }) => m);
      fs.writeFileSync(a.json, `${JSON.stringify({
        ...header, shape, weightBytes: fx.weightBytes, peak, settings: ortFlags, engine: a.engine, dtype: a.dtype,
        torch: torchSkip ? { skipped: torchSkip } : { blas: blasNote }, results: measured, agreement, rounds,
        ...(comparison ? { comparison } : {}),
      }, null, 2)}\n`);
      console.log(`wrote ${a.json}`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return 0;
}

/**
 * Runs the engine comparison (bench/llamaCpp.ts) in its own process, installing llama.cpp first when asked for
 * and missing, and returns what it measured.
 */
function engineComparison(o: { precisions: string; llamaCpp: boolean; seq: number; reps: string; threads: string; cacheRoot: string; work: string }): EngineComparison {
  const script = path.join(__dirname, "bench", "llamaCpp.js");
  if (o.llamaCpp && !fs.existsSync(path.join(o.cacheRoot, "llama-cpp", "gguf-py"))) {
    const setup = spawnSync(process.execPath, [script, "--setup", "--cache", o.cacheRoot], { stdio: "inherit" });
    if (setup.status !== 0) console.log("llama.cpp could not be installed (see above); its rows are skipped");
  }
  const json = path.join(o.work, "comparison.json");
  const r = spawnSync(process.execPath, [script, "--ours", o.precisions, "--types", o.llamaCpp ? "F32,F16,Q8_0,Q4_0" : "", "--seq", String(o.seq),
    "--reps", o.reps, "--threads", o.threads, "--cache", o.cacheRoot, "--json", json], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`the engine comparison failed (${r.status ?? r.signal})`);
  return JSON.parse(fs.readFileSync(json, "utf8")) as EngineComparison;
}

function measurement(engine: Measurement["engine"], seq: number, pass: Measurement["pass"], seconds: number, rss: number,
  flops: number, outFile: string, note?: string): Measurement {
  return { engine, seq, pass, seconds, tokensPerSecond: seq / seconds, gflops: flops / seconds / 1e9, peakRssBytes: rss, outFile, note };
}

function runJson<T>(cmd: string, args: string[], env: NodeJS.ProcessEnv): T {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${path.basename(args[0]!)} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop()!;
  return JSON.parse(line) as T;
}

/** max |a-b| over max |b|: the difference relative to the reference's scale. */
function scaledDiff(a: number[], b: number[]): number {
  let scale = 0, diff = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scale;
}

function printTable(rs: Measurement[], peak: number, weightBytes: number, agreement: { seq: number; pass: string; taps: number; logits?: number }[]): void {
  const head = ["seq", "pass", "engine", "tok/s", "GFLOP/s", "% peak", "peak RSS GiB", "RSS/weights", "notes"];
  const rows: string[][] = [head];
  const keys = [...new Set(rs.map((r) => `${r.seq}|${r.pass}`))];
  const summary: string[] = [];
  for (const key of keys) {
    const [ort, engine, torch] = (["onnxruntime", "torch engine", "pytorch"] as const).map((e) => rs.find((r) => `${r.seq}|${r.pass}` === key && r.engine === e));
    for (const r of [ort, engine, torch]) {
      if (!r) continue;
      rows.push([String(r.seq), r.pass, r.engine, r.tokensPerSecond.toFixed(1), r.gflops.toFixed(0), `${((100 * r.gflops) / peak).toFixed(0)} %`,
        (r.peakRssBytes / GIB).toFixed(2), `${(r.peakRssBytes / weightBytes).toFixed(2)}×`, r.note ?? ""]);
    }
    if (ort && engine) {
      rows.push(["", "", "ratio torch engine/ORT", `${(engine.tokensPerSecond / ort.tokensPerSecond).toFixed(2)}×`, "", "",
        `${(engine.peakRssBytes / ort.peakRssBytes).toFixed(2)}×`, "", torch ? `torch engine / PyTorch reference ${(engine.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}×` : ""]);
      summary.push(`seq ${ort.seq} ${ort.pass}: torch engine ${(engine.tokensPerSecond / ort.tokensPerSecond).toFixed(2)}× the onnx engine's tokens/s` +
        (torch ? `, ${(engine.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}× the plain PyTorch reference's` : ""));
    }
    if (ort && torch) {
      const o = JSON.parse(fs.readFileSync(ort.outFile, "utf8")) as { taps: number[]; last_logits: number[] | null };
      const t = JSON.parse(fs.readFileSync(torch.outFile, "utf8")) as { taps: number[]; last_logits: number[] | null };
      agreement.push({ seq: ort.seq, pass: ort.pass, taps: scaledDiff(o.taps, t.taps), ...(o.last_logits && t.last_logits ? { logits: scaledDiff(o.last_logits, t.last_logits) } : {}) });
      const agree = `taps differ by ${scaledDiff(o.taps, t.taps).toExponential(1)}` +
        (o.last_logits && t.last_logits ? `, logits by ${scaledDiff(o.last_logits, t.last_logits).toExponential(1)}` : "") + " of scale";
      rows.push(["", "", "ratio ORT/PyTorch", `${(ort.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}×`, "", "",
        `${(ort.peakRssBytes / torch.peakRssBytes).toFixed(2)}×`, "", agree]);
      summary.push(`seq ${ort.seq} ${ort.pass}: ${(ort.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}× PyTorch (target ≥ 1.2×), ` +
        `${((100 * ort.gflops) / peak).toFixed(0)} % of peak (target ≥ 75 %), RSS ${(ort.peakRssBytes / weightBytes).toFixed(2)}× weights (target ≤ 1.3×)`);
    }
  }
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => (c < 3 || c === 8 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd());
  if (summary.length) console.log(`\n${summary.join("\n")}`);
}

void main().then((code) => (process.exitCode = code));
