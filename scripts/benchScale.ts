/**
 * `npm run bench:scale`: the streamed profiler on a random model of Llama-2-7B's shape (hidden 4096, 32 layers,
 * 32 heads, intermediate 11008, vocab 32000) stored as sharded BF16 safetensors (~12.6 GiB), generated once into
 * ./.cache/bench-7b. Profiles 256 tokens in a child process (so its peak RSS is its own) and prints tokens/s,
 * GFLOP/s, peak RSS and the time to the first block. Targets (issue 9): under 60 s and under 6 GiB.
 *
 * Usage: npm run bench:scale -- [--budget 4G] [--tokens 256] [--threads N] [--cache DIR] [--json FILE]
 *        [--device cpu|webgpu|cuda] [--no-train] [--no-profile] [--precision fp32|int8|int4]
 * `--precision int8|int4` profiles the whole model with its projections quantized (no streaming; the budget is
 * the automatic one unless --budget is given): a first run quantizes into an emptied cache beside the model
 * (.cache/bench-7b/quant), the timed run that follows finds it there. Targets (issue 17): int4 under 10 s for 256
 * tokens and under 6 GiB.
 * With a GPU `--device`, each block is uploaded to the GPU as it runs (the model need not fit the GPU).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { loadHfModel, parseModelConfig } from "../extension/core/models/hfModel";
import { writeTinyAdapter } from "../extension/core/demo/tinyModel";
import { profileAdapter } from "../extension/core/importance/profile";
import { parseSize, formatBytes } from "../extension/core/stream/memoryBudget";
import { maxRssBytes } from "../extension/core/stream/peakMemory";
import { passFlops } from "./bench/benchModel";
import { loadAdapter } from "../extension/core/adapter/peftAdapter";
import { slotOf } from "../extension/core/runtime/loraRunner";
import { makeBatch } from "../extension/core/data/batch";
import { countTargets, LoraParam } from "../extension/core/runtime/lossSession";
import { streamedLoraGradients } from "../extension/core/stream/streamGrad";
import { PeakRss } from "../extension/core/stream/peakMemory";
import type { DeviceChoice } from "../extension/core/runtime/session";
import { ModelConfig } from "../extension/core/models/config";
import { moduleDims, moduleParent } from "../extension/core/models/arch";
import { loadExamples } from "../extension/core/data/examples";
import { benchHeader } from "./bench/machine";
import { checkPrecision, type Precision } from "../extension/core/quant/precision";

const LLAMA2_7B = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 32, intermediate_size: 11008, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000,
  tie_word_embeddings: false, attention_bias: false, hidden_act: "silu", max_position_embeddings: 4096, torch_dtype: "bfloat16",
  bos_token_id: 1, eos_token_id: 2,
};
const LORA = { r: 8, alpha: 16, targets: ["q_proj", "v_proj"] };

/** The worker's figures. */
interface WorkerResult {
  seconds: number;
  /** User + system CPU time of the worker: with the machine to itself, wall time ≈ this / cores. */
  cpuSeconds: number;
  tokens: number;
  firstBlockSeconds: number;
  firstBlockLayers: number;
  peakSampledBytes: number;
  maxRssBytes: number;
  layersPerBlock: number;
  device: string;
  precision: Precision;
  streamed: boolean;
  /**
   * A whole (not streamed) run: seconds from the start until its session was ready (model, weights cache, graph,
   * session creation with onnxruntime's prepacking), taken when the profile logs the session's execution provider.
   */
  setupSeconds?: number;
}

/** A tensor to generate: name, shape and the half-width of its uniform distribution around `mean`. */
interface GenTensor { name: string; shape: number[]; half: number; mean: number }

/**
 * Writes one BF16 safetensors shard tensor by tensor, in 32 MiB chunks of xorshift uniform values, so the whole
 * model is never in memory (writeTinyModel's normal draws in JS would take many minutes for 6.7 G values).
 */
function writeShard(file: string, tensors: GenTensor[], seed: number): void {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let at = 0;
  for (const t of tensors) {
    const bytes = 2 * t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: "BF16", shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const tmp = `${file}.partial`;
  const fd = fs.openSync(tmp, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, Buffer.from(json, "utf8"));
    const chunk = new Uint16Array(16 * 1024 * 1024);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    let x = seed >>> 0 || 1;
    for (const t of tensors) {
      let left = t.shape.reduce((a, b) => a * b, 1);
      const scale = (2 * t.half) / 4294967296;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        for (let i = 0; i < n; i++) {
          x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
          f[0] = t.mean - t.half + (x >>> 0) * scale;
          chunk[i] = u[0]! >>> 16;
        }
        fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
        left -= n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Generates the 7B-shaped model and adapter into `cacheDir` unless a complete one is there. */
function ensureModel(cacheDir: string): { modelDir: string; adapterDir: string; cfg: ModelConfig } {
  const modelDir = path.join(cacheDir, "model");
  const adapterDir = path.join(cacheDir, "adapter");
  const marker = path.join(cacheDir, "fixture.json");
  const want = JSON.stringify({ config: LLAMA2_7B, lora: LORA, version: 1 });
  if (!fs.existsSync(marker) || fs.readFileSync(marker, "utf8") !== want) {
    fs.rmSync(cacheDir, { recursive: true, force: true });
    fs.mkdirSync(modelDir, { recursive: true });
    const cfg = parseModelConfig(path.join(modelDir, "config.json"), LLAMA2_7B);
    const uniform = (std: number) => std * Math.sqrt(3);
    const layerTensors = (i: number): GenTensor[] => {
      const p = `model.layers.${i}`;
      const out: GenTensor[] = [
        { name: `${p}.input_layernorm.weight`, shape: [cfg.hiddenSize], half: 0.1, mean: 1 },
        { name: `${p}.post_attention_layernorm.weight`, shape: [cfg.hiddenSize], half: 0.1, mean: 1 },
      ];
      for (const m of ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]) {
        const d = moduleDims(cfg, m);
        out.push({ name: `${p}.${moduleParent(m)}.${m}.weight`, shape: [d.out, d.in], half: uniform(1 / Math.sqrt(d.in)), mean: 0 });
      }
      return out;
    };
    // Shards: the embedding, then four layers per shard, then the final norm and LM head (~1.6 GiB each).
    const shards: GenTensor[][] = [[{ name: "model.embed_tokens.weight", shape: [cfg.vocabSize, cfg.hiddenSize], half: uniform(1), mean: 0 }]];
    for (let i = 0; i < cfg.numLayers; i += 4) shards.push([i, i + 1, i + 2, i + 3].filter((l) => l < cfg.numLayers).flatMap(layerTensors));
    shards.push([{ name: "model.norm.weight", shape: [cfg.hiddenSize], half: 0.1, mean: 1 },
      { name: "lm_head.weight", shape: [cfg.vocabSize, cfg.hiddenSize], half: uniform(1 / Math.sqrt(cfg.hiddenSize)), mean: 0 }]);
    const weightMap: Record<string, string> = {};
    const started = Date.now();
    shards.forEach((part, s) => {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
      writeShard(path.join(modelDir, file), part, 0x9e3779b9 ^ (s + 1));
      for (const t of part) weightMap[t.name] = file;
      console.log(`  shard ${s + 1}/${shards.length} written (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    });
    fs.writeFileSync(path.join(modelDir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
    fs.writeFileSync(path.join(modelDir, "config.json"), JSON.stringify(LLAMA2_7B, null, 2));
    writeTinyAdapter(adapterDir, cfg, { seed: 2, r: LORA.r, alpha: LORA.alpha, targets: LORA.targets });
    fs.writeFileSync(marker, want);
  }
  return { modelDir, adapterDir, cfg: loadHfModel(modelDir).config };
}

/** Child process: one streamed training step (loss + LoRA gradients), blocks of one layer. */
async function trainWorker(args: { modelDir: string; adapterDir: string; dataPath: string; tokens: number; threads?: number; layersPerBlock: number; device: DeviceChoice }): Promise<void> {
  const started = Date.now();
  const peak = new PeakRss().start();
  const model = loadHfModel(args.modelDir);
  const adapter = loadAdapter(args.adapterDir, model.config);
  const params = new Map<string, LoraParam>();
  for (const l of adapter.loras) params.set(l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B });
  const batch = makeBatch(loadExamples(model, args.dataPath, 1, args.tokens));
  const r = await streamedLoraGradients(model, adapter.loras.map(slotOf), params, [batch], countTargets(batch), { device: args.device, threads: args.threads, layersPerBlock: args.layersPerBlock });
  const cpu = process.cpuUsage();
  const result = { seconds: (Date.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, loss: r.loss, peakSampledBytes: peak.stop(), maxRssBytes: maxRssBytes() };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Child process: one streamed profile, figures as JSON on stdout's last line. */
async function worker(args: { modelDir: string; adapterDir: string; dataPath: string; tokens: number; budget?: number; threads?: number; device: DeviceChoice; precision: Precision; quantCacheDir: string }): Promise<void> {
  const started = Date.now();
  let firstBlockSeconds = 0;
  let firstBlockLayers = 0;
  let layersPerBlock = 0;
  let streamed = false;
  let setupSeconds: number | undefined;
  const quantized = args.precision !== "fp32";
  const p = await profileAdapter({
    modelDir: args.modelDir, adapterDir: args.adapterDir, dataPath: args.dataPath, maxExamples: 1, maxTokens: args.tokens, batchSize: 1,
    device: args.device, threads: args.threads, memoryBudget: args.budget, stream: quantized ? "auto" : "on", precision: args.precision, quantCacheDir: args.quantCacheDir,
    onPlan: (plan) => { layersPerBlock = plan.layersPerBlock; streamed = plan.stream; },
  }, {
    log: {
      info: (m) => {
        if (!streamed && setupSeconds === undefined && m.startsWith("execution provider: ")) setupSeconds = (Date.now() - started) / 1000;
        process.stderr.write(`  ${m}\n`);
      },
      warn: (m) => process.stderr.write(`  warning: ${m}\n`),
    },
    progress: { report: (r) => { if (!firstBlockSeconds) { firstBlockSeconds = (Date.now() - started) / 1000; firstBlockLayers = r.step ?? 0; } } },
  });
  const cpu = process.cpuUsage();
  const result: WorkerResult = {
    seconds: (Date.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, tokens: p.timing.tokens, firstBlockSeconds, firstBlockLayers,
    peakSampledBytes: p.timing.peak_rss_bytes ?? 0, maxRssBytes: maxRssBytes(), layersPerBlock, device: p.device, precision: args.precision, streamed,
    ...(setupSeconds !== undefined ? { setupSeconds } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function main(): number {
  const { values: a } = parseArgs({
    options: {
      budget: { type: "string", default: "4G" }, tokens: { type: "string", default: "256" }, threads: { type: "string" },
      cache: { type: "string", default: path.join(process.cwd(), ".cache", "bench-7b") }, json: { type: "string" }, worker: { type: "string" },
      "train-worker": { type: "string" }, "no-train": { type: "boolean", default: false }, "no-profile": { type: "boolean", default: false },
      device: { type: "string", default: "cpu" }, precision: { type: "string", default: "fp32" },
    },
  });
  const precision = checkPrecision(a.precision);
  if (a.worker) {
    worker(JSON.parse(a.worker)).catch((e) => { console.error(e); process.exit(1); });
    return -1;
  }
  if (a["train-worker"]) {
    trainWorker(JSON.parse(a["train-worker"])).catch((e) => { console.error(e); process.exit(1); });
    return -1;
  }
  const header = benchHeader("scale", "npm run bench:scale");
  const tokens = Number(a.tokens);
  const device = a.device as DeviceChoice;
  if (!["cpu", "webgpu", "cuda", "auto"].includes(device)) throw new Error(`--device ${device}: expected cpu, webgpu, cuda or auto`);
  // A quantized model runs whole: the automatic budget unless one is given.
  const budgetGiven = process.argv.some((arg) => arg === "--budget" || arg.startsWith("--budget="));
  const budget = precision !== "fp32" && !budgetGiven ? undefined : parseSize(a.budget!);
  console.log(`bench:scale — Llama-2-7B shape, BF16 shards in ${a.cache}; ${os.cpus().length} CPUs, ${formatBytes(os.totalmem())} RAM`);
  const genStart = Date.now();
  const { modelDir, adapterDir, cfg } = ensureModel(a.cache!);
  console.log(`model ready (${((Date.now() - genStart) / 1000).toFixed(0)} s)`);
  const dataPath = path.join(a.cache!, `data-${tokens}.jsonl`);
  const ids = Array.from({ length: tokens }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (cfg.vocabSize - 3))));
  fs.writeFileSync(dataPath, `${JSON.stringify({ input_ids: ids })}\n`);
  const runWorker = (): WorkerResult | undefined => {
    const child = spawnSync(process.execPath, [__filename, "--worker", JSON.stringify({
      modelDir, adapterDir, dataPath, tokens, budget, threads: a.threads ? Number(a.threads) : undefined, device, precision, quantCacheDir: path.join(a.cache!, "quant"),
    })], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 });
    if (child.status !== 0) {
      console.error(`the profile worker failed (exit ${child.status})`);
      return undefined;
    }
    return JSON.parse(child.stdout.trim().split("\n").pop()!) as WorkerResult;
  };
  // Quantized: the first run builds the weight cache from empty (timed apart), the measured one starts from it.
  if (!a["no-profile"] && precision !== "fp32") fs.rmSync(path.join(a.cache!, "quant"), { recursive: true, force: true });
  const first = !a["no-profile"] && precision !== "fp32" ? runWorker() : undefined;
  if (first) console.log(`first ${precision} run, quantizing into the cache: ${first.seconds.toFixed(1)} s`);
  const r = a["no-profile"] || (precision !== "fp32" && !first) ? undefined : runWorker();
  if (!a["no-profile"] && !r) return 1;
  const flops = passFlops(cfg, { seq: tokens, batch: 1, layers: cfg.numLayers, lmHead: false, lora: LORA.targets.map((m) => ({ module: m, r: LORA.r })) });
  const rows: [string, string][] = !r ? [] : [
    ["tokens", `${r.tokens}`],
    ["precision", `${r.precision}${r.streamed ? ", streamed" : ", whole (not streamed)"}`],
    ["budget / layers per block", `${budget !== undefined ? formatBytes(budget) : "automatic"} / ${r.layersPerBlock}`],
    ["profile time", `${r.seconds.toFixed(1)} s (target < ${r.precision === "int4" ? 10 : 60} s)`],
    ...(r.setupSeconds !== undefined ? [["of which setup", `${r.setupSeconds.toFixed(1)} s (model, weights, graph, session creation); the run ${(r.seconds - r.setupSeconds).toFixed(1)} s`] as [string, string]] : []),
    ["CPU time", `${r.cpuSeconds.toFixed(1)} s (${(r.cpuSeconds / r.seconds).toFixed(2)} cores busy on average; load from other processes slows the wall time)`],
    ["tokens/s", (r.tokens / r.seconds).toFixed(1)],
    ["GFLOP/s", `${(flops / r.seconds / 1e9).toFixed(1)} (${(flops / 1e12).toFixed(2)} TFLOP)`],
    ["time to first block", `${r.firstBlockSeconds.toFixed(1)} s (${r.firstBlockLayers} layer(s), including setup)`],
    ["peak RSS (sampled)", `${formatBytes(r.peakSampledBytes)} (target < 6 GiB)`],
    ["max RSS (getrusage)", formatBytes(r.maxRssBytes)],
    ["device", r.device],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(26)} ${v}`);
  let train: Record<string, number> | undefined;
  if (!a["no-train"]) {
    const t = spawnSync(process.execPath, [__filename, "--train-worker", JSON.stringify({
      modelDir, adapterDir, dataPath, tokens, threads: a.threads ? Number(a.threads) : undefined, layersPerBlock: 1, device,
    })], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 });
    if (t.status !== 0) {
      console.error(`the training worker failed (exit ${t.status})`);
    } else {
      train = JSON.parse(t.stdout.trim().split("\n").pop()!) as Record<string, number>;
      console.log(`${"training step (1 layer/block)".padEnd(26)} ${train.seconds!.toFixed(1)} s (CPU ${train.cpuSeconds!.toFixed(1)} s), loss ${train.loss!.toFixed(3)}, peak RSS ${formatBytes(train.peakSampledBytes!)} (max RSS ${formatBytes(train.maxRssBytes!)})`);
    }
  }
  if (a.json) fs.writeFileSync(a.json, `${JSON.stringify({ ...header, profile: r, ...(first ? { firstRunSeconds: first.seconds } : {}), budget, flops, train }, null, 2)}\n`);
  return 0;
}

const code = main();
if (code >= 0) process.exitCode = code;
