/**
 * `npm run bench:train`: LoRA training throughput (forward + backward + AdamW step), achieved GFLOP/s and peak
 * memory of `trainLora` on the benchmark's random model of TinyLlama-1.1B's shape (fp32; see scripts/bench), beside
 * a PyTorch CPU reference doing the same LoRA training step on the same weights in the same run. Each measurement
 * runs in its own process so that its peak RSS is its own; batch 1, the loss over every next token.
 *
 * Usage: npm run bench:train -- [--seq 256[,128,512]] [--reps 3] [--no-torch] [--python PATH] [--peak-gflops auto|N]
 *        [--threads N] [--prepack 0|1] [--cache DIR] [--json FILE] [--engine onnx|torch] [--rounds 2]
 *        [--torch-device cpu|cuda] [--dtype float32|bfloat16|float16] [--memory-budget 1.25x[,5G…]]
 * `--engine torch` adds LoRA-drop's torch engine (`trainLora` with engine torch, as `lora-drop train --engine torch`
 * runs it) beside the onnx engine; the two alternate, `--rounds` times each, the best round of each is reported and
 * every round is in the JSON. `--peak-gflops auto` (the default) measures the CPU's fp32 peak (cpuPeak.ts).
 * `--memory-budget` runs the onnx engine again under each budget (`1.25x`: that multiple of the fp32 weights, or a
 * size), right after each unbudgeted run: trainLora recomputes the MLP up projections when the budget asks for it,
 * and the rows and the summary say so, with its speed and peak RSS against the unbudgeted run's.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { parseSize } from "../extension/core/stream/memoryBudget";
import { loadHfModel } from "../extension/core/models/hfModel";
import { Rng } from "../extension/core/util/random";
import { ensureBenchModel, describeShape, passFlops, PassShape, TINYLLAMA_SHAPE } from "./bench/benchModel";
import { torchEngineTrain } from "./bench/torchEngine";
import type { TorchDevice, TorchDtype } from "../extension/core/torch/protocol";
import { trainLora } from "../extension/core/train/train";
import { ModelConfig } from "../extension/core/models/config";
import { benchHeader } from "./bench/machine";
import { describePeak, detectCpuPeak } from "./bench/cpuPeak";

const GIB = 1024 ** 3;

/** What one engine's measurement reports. */
interface StepResult {
  best: number;
  times: number[];
  peakRssBytes: number;
  firstLoss: number;
  firstGradNorm: number;
  note?: string;
}

/**
 * FLOPs of one LoRA training step, 2·M·N·K per matmul: the forward pass with the LM head, then the backward pass,
 * which for frozen weights needs only input gradients (the same products again), twice the attention products
 * (dP, dV, dQ, dK) and twice LoRA's thin products (input and parameter gradients).
 */
export function trainStepFlops(cfg: ModelConfig, p: PassShape): number {
  const forward = passFlops(cfg, p);
  const attention = 2 * (2 * p.batch * cfg.numHeads * p.seq * p.seq * cfg.headDim) * p.layers;
  const backward = passFlops(cfg, { ...p, lora: [...p.lora, ...p.lora] }) + attention;
  return forward + backward;
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    options: {
      seq: { type: "string", default: "256" }, reps: { type: "string", default: "3" }, "no-torch": { type: "boolean", default: false },
      python: { type: "string" }, "peak-gflops": { type: "string", default: "auto" }, threads: { type: "string" }, prepack: { type: "string" },
      cache: { type: "string", default: path.join(".cache", "bench") }, json: { type: "string" },
      worker: { type: "boolean", default: false }, model: { type: "string" }, adapter: { type: "string" }, ids: { type: "string" },
      engine: { type: "string", default: "onnx" }, rounds: { type: "string", default: "2" }, "torch-device": { type: "string", default: "cpu" },
      dtype: { type: "string", default: "float32" }, "memory-budget": { type: "string" },
    },
  });
  const withTorchEngine = a.engine === "torch";
  if (a.worker) {
    void worker(a.model!, a.adapter!, a.ids!, Number(a.reps), a.threads ? Number(a.threads) : undefined, a.prepack, a["memory-budget"] ? Number(a["memory-budget"]) : undefined);
    return 0;
  }
  const header = benchHeader("train", "npm run bench:train");
  const seqs = a.seq.split(",").map(Number);
  const detected = a["peak-gflops"] === "auto" ? detectCpuPeak() : undefined;
  const peak = detected ? detected.fp32Gflops : Number(a["peak-gflops"]);
  const shape = TINYLLAMA_SHAPE;
  const fx = ensureBenchModel(path.resolve(a.cache), shape, (m) => console.log(m));
  const cfg = loadHfModel(fx.modelDir).config;
  const lora = shape.loraTargets.map((module) => ({ module, r: shape.loraR }));
  const python = a.python ?? process.env.LORA_DROP_BENCH_PYTHON ?? (fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
  const torchEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? "2", OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? "Haswell" };
  let torchSkip = a["no-torch"] ? "--no-torch given" : undefined;
  if (!torchSkip && spawnSync(python, ["-c", "import torch"], { env: torchEnv }).status !== 0) {
    torchSkip = `${python} cannot import torch (apt-get install python3-torch libopenblas0-pthread, or pass --python)`;
  }
  console.log(`model: ${describeShape(shape)}; weights ${(fx.weightBytes / GIB).toFixed(2)} GiB; batch 1; training step = forward + backward + AdamW`);
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}; peak taken as ${peak.toFixed(0)} GFLOP/s fp32${detected ? `, ${describePeak(detected)}` : " (--peak-gflops)"}; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (torchSkip) console.log(`PyTorch reference skipped: ${torchSkip}`);
  else console.log(`PyTorch reference: ${python}, torch.set_num_threads(1), OPENBLAS_NUM_THREADS=${torchEnv.OPENBLAS_NUM_THREADS}, OPENBLAS_CORETYPE=${torchEnv.OPENBLAS_CORETYPE}`);

  if (withTorchEngine) console.log(`torch engine: ${python}, device ${a["torch-device"]}, ${a.dtype}; alternating with onnxruntime, ${a.rounds} rounds each`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-bench-train-"));
  const rows: string[][] = [["seq", "engine", "tok/s", "GFLOP/s", "% peak", "peak RSS GiB", "RSS/weights", "notes"]];
  const summary: string[] = [];
  // `--memory-budget 1.25x,5G`: the onnx engine again under each budget (a multiple of the fp32 weights, or a size).
  const budgets = (a["memory-budget"] ?? "").split(",").filter(Boolean).map((spec) => ({
    label: spec, bytes: (weights: number) => (/x$/i.test(spec) ? Number(spec.slice(0, -1)) * weights : parseSize(spec)),
  }));
  const json: unknown[] = [];
  try {
    for (const seq of seqs) {
      const rng = new Rng(2000 + seq);
      const idsFile = path.join(work, `ids-${seq}.json`);
      fs.writeFileSync(idsFile, JSON.stringify(Array.from({ length: seq }, () => 3 + rng.int(cfg.vocabSize - 3))));
      const flops = trainStepFlops(cfg, { seq, batch: 1, layers: cfg.numLayers, lmHead: true, lora });
      const common = ["--model", fx.modelDir, "--adapter", fx.adapterDir, "--ids", idsFile, "--reps", a.reps];
      const ortArgs = [path.join(__dirname, "benchTrain.js"), "--worker", ...common, ...(a.threads ? ["--threads", a.threads] : []), ...(a.prepack ? ["--prepack", a.prepack] : [])];
      // With the torch engine the two alternate: a load change on a shared machine hits both.
      let o: StepResult | undefined;
      const budgeted = new Map<string, StepResult>();
      let te: StepResult | undefined;
      for (let round = 0; round < (withTorchEngine || budgets.length ? Number(a.rounds) : 1); round++) {
        const ro = runJson<StepResult>(process.execPath, ortArgs, process.env);
        console.log(`  seq ${seq}: onnxruntime ${(seq / ro.best).toFixed(1)} tok/s`);
        json.push({ seq, engine: "onnxruntime", round, ...ro, flops });
        if (!o || ro.best < o.best) o = ro;
        // Each memory budget right after the unbudgeted run: the same load hits both.
        for (const b of budgets) {
          const rb = runJson<StepResult>(process.execPath, [...ortArgs, "--memory-budget", String(Math.floor(b.bytes(fx.weightBytes)))], process.env);
          console.log(`  seq ${seq}: onnxruntime, budget ${b.label} ${(seq / rb.best).toFixed(1)} tok/s${rb.note ? ` (${rb.note})` : ""}`);
          json.push({ seq, engine: `onnxruntime, budget ${b.label}`, round, ...rb, flops });
          if (!budgeted.has(b.label) || rb.best < budgeted.get(b.label)!.best) budgeted.set(b.label, rb);
        }
        if (!withTorchEngine) continue;
        const t = await torchEngineTrain({
          modelDir: fx.modelDir, adapterDir: fx.adapterDir, idsFile, reps: Number(a.reps), python, env: torchEnv,
          device: a["torch-device"] as TorchDevice, dtype: a.dtype as TorchDtype, ...(a.threads ? { threads: Number(a.threads) } : {}),
        });
        const rt: StepResult = { best: t.best, times: t.times, peakRssBytes: t.peakRssBytes, firstLoss: t.firstLoss!, firstGradNorm: t.firstGradNorm!, note: t.device };
        console.log(`  seq ${seq}: torch engine ${(seq / rt.best).toFixed(1)} tok/s`);
        json.push({ seq, engine: "torch engine", round, ...rt, flops });
        if (!te || rt.best < te.best) te = rt;
      }
      const results: [string, StepResult][] = [["onnxruntime", o!], ...[...budgeted].map(([label, r]) => [`onnxruntime, budget ${label}`, r] as [string, StepResult]),
        ...(te ? [["torch engine", te] as [string, StepResult]] : [])];
      for (const [label, r] of budgeted) {
        summary.push(`seq ${seq}: budget ${label}: ${(o!.best / r.best).toFixed(2)}× the unbudgeted tokens/s, peak RSS ${(r.peakRssBytes / fx.weightBytes).toFixed(2)}× the fp32 weights (unbudgeted ${(o!.peakRssBytes / fx.weightBytes).toFixed(2)}×)${r.note ? `; ${r.note}` : ""}`);
      }
      if (!torchSkip) {
        const t = runJson<{ best: number; times: number[]; peak_rss_bytes: number; blas: string[]; torch: string; first_loss: number; first_grad_norm: number }>(
          python, [path.join(__dirname, "..", "..", "scripts", "bench", "torch_train.py"), ...common], torchEnv);
        const blas = t.blas.some((b) => b.includes("openblas")) ? t.blas.join(", ") : `${t.blas.join(", ") || "none"} — WARNING: not OpenBLAS`;
        const ref: StepResult = { best: t.best, times: t.times, peakRssBytes: t.peak_rss_bytes, firstLoss: t.first_loss, firstGradNorm: t.first_grad_norm, note: `torch ${t.torch}, ${blas}` };
        results.push(["pytorch", ref]);
        json.push({ seq, engine: "pytorch", ...ref, flops });
      }
      for (const [engine, r] of results) {
        const gflops = flops / r.best / 1e9;
        rows.push([String(seq), engine, (seq / r.best).toFixed(1), gflops.toFixed(0), `${((100 * gflops) / peak).toFixed(0)} %`,
          (r.peakRssBytes / GIB).toFixed(2), `${(r.peakRssBytes / fx.weightBytes).toFixed(2)}×`, r.note ?? `step ${r.best.toFixed(2)} s`]);
      }
      if (te) {
        const vs = results.find(([e]) => e === "pytorch")?.[1];
        rows.push(["", "ratio torch engine/ORT", `${(o!.best / te.best).toFixed(2)}×`, "", "", `${(te.peakRssBytes / o!.peakRssBytes).toFixed(2)}×`, "",
          `first-step loss ${te.firstLoss.toFixed(5)} vs ${o!.firstLoss.toFixed(5)}${vs ? `; torch engine / PyTorch reference ${(vs.best / te.best).toFixed(2)}×` : ""}`]);
        summary.push(`seq ${seq}: torch engine ${(o!.best / te.best).toFixed(2)}× the onnx engine's tokens/s${vs ? `, ${(vs.best / te.best).toFixed(2)}× the plain PyTorch reference's` : ""}`);
      }
      const reference = results.find(([e]) => e === "pytorch");
      if (reference) {
        const ort = o!;
        const [, torch] = reference;
        const agree = `first-step loss ${ort.firstLoss.toFixed(5)} vs ${torch.firstLoss.toFixed(5)}, gradient norm ${ort.firstGradNorm.toPrecision(5)} vs ${torch.firstGradNorm.toPrecision(5)}`;
        rows.push(["", "ratio ORT/PyTorch", `${(torch.best / ort.best).toFixed(2)}×`, "", "", `${(ort.peakRssBytes / torch.peakRssBytes).toFixed(2)}×`, "", agree]);
        summary.push(`seq ${seq}: ${(torch.best / ort.best).toFixed(2)}× PyTorch's tokens/s (target ≥ 1.0×), ${((100 * flops) / ort.best / 1e9 / peak).toFixed(0)} % of peak (target ≥ 50 %), ` +
          `peak RSS ${(ort.peakRssBytes / torch.peakRssBytes).toFixed(2)}× PyTorch's (target < 1.0×)`);
      }
    }
    console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log(r.map((cell, c) => (c < 2 || c === 7 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd());
    if (summary.length) console.log(`\n${summary.join("\n")}`);
    if (a.json) {
      fs.writeFileSync(a.json, `${JSON.stringify({ ...header, shape, weightBytes: fx.weightBytes, peak, engine: a.engine, dtype: a.dtype, torch: torchSkip ? { skipped: torchSkip } : {}, results: json }, null, 2)}\n`);
      console.log(`wrote ${a.json}`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return 0;
}

/** The onnxruntime side, in its own process: `trainLora` itself, timed between consecutive steps. */
async function worker(modelDir: string, adapterDir: string, idsFile: string, reps: number, threads: number | undefined, prepack: string | undefined, memoryBudget: number | undefined): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-bench-train-worker-"));
  try {
    const ids = JSON.parse(fs.readFileSync(idsFile, "utf8")) as number[];
    const data = path.join(dir, "data.jsonl");
    fs.writeFileSync(data, JSON.stringify({ input_ids: ids }) + "\n");
    const stamps: number[] = [];
    const events: { loss: number; gradNorm: number }[] = [];
    let note: string | undefined;
    await trainLora({
      modelDir, dataPath: data, outDir: path.join(dir, "out"), initAdapterDir: adapterDir, steps: reps + 1, batchSize: 1,
      maxTokens: ids.length, lr: 1e-4, schedule: "constant", maxGradNorm: 0, device: "cpu", threads,
      ...(prepack !== undefined ? { prepack: prepack !== "0" } : {}), ...(memoryBudget !== undefined ? { memoryBudget } : {}),
    }, {
      onStep: (e) => { stamps.push(performance.now()); events.push(e); },
      log: { info: (m) => { if (/recomputing the MLP up projections/.test(m)) note = "up projections recomputed"; else if (/^streaming:/.test(m)) note = m; }, warn: () => {} },
    });
    // The first step is a warm-up (page faults of the memory-mapped weights, arena growth).
    const times = stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000);
    const result: StepResult = {
      best: Math.min(...times), times, peakRssBytes: process.resourceUsage().maxRSS * 1024,
      firstLoss: events[0]!.loss, firstGradNorm: events[0]!.gradNorm, ...(note ? { note } : {}),
    };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runJson<T>(cmd: string, args: string[], env: NodeJS.ProcessEnv): T {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${path.basename(args[0]!)} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

void main().then((code) => (process.exitCode = code));
