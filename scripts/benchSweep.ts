/**
 * `npm run bench:sweep`: what a sweep costs on the TinyLlama-shaped benchmark model (22 layers, hidden 2048, fp32;
 * LoRA r=8 on q/v, generated once into the cache by bench/benchModel.ts): the output profile of 64 × 128 random
 * tokens, then the sweep of every distinct threshold over the same tokens — the base model, the full adapter and
 * one pruned adapter per kept-set size, all through one session. Prints a summary and one JSON line (also written
 * to --json, e.g. docs/bench/sweep.json, with the bench header: machine, date, load average and command).
 *
 * Options: --cache DIR (default .cache/bench), --examples 64, --tokens 128, --threads N, --device cpu|webgpu|cuda,
 * --stream auto|on|off, --thresholds 0.5,0.9 (default: every distinct one), --wait-idle SECONDS, --json FILE.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ensureBenchModel, describeShape, TINYLLAMA_SHAPE } from "./bench/benchModel";
import { profileAdapter } from "../extension/core/importance/profile";
import { writeProfile } from "../extension/core/importance/profileFile";
import { runSweep } from "../extension/core/sweep/sweep";
import { sweepTable } from "../extension/cli/sweepCommand";
import { Rng } from "../extension/core/util/random";
import type { DeviceChoice } from "../extension/core/runtime/session";
import type { StreamChoice } from "../extension/core/stream/memoryBudget";
import { reportError } from "../extension/cli/terminal";
import { benchHeader } from "./bench/machine";
import { waitIdleNote } from "./bench/idle";

const GIB = 1024 ** 3;

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      cache: { type: "string", default: path.join(".cache", "bench") }, examples: { type: "string", default: "64" }, tokens: { type: "string", default: "128" },
      threads: { type: "string" }, device: { type: "string", default: "cpu" }, stream: { type: "string", default: "auto" }, thresholds: { type: "string" },
      "wait-idle": { type: "string", default: "0" }, json: { type: "string" },
    },
  });
  const examples = Number(a.examples), tokens = Number(a.tokens);
  const fx = ensureBenchModel(path.resolve(a.cache!), TINYLLAMA_SHAPE, (m) => console.log(m));
  // Random token ids (seeded): a sweep's cost depends on the number of tokens, not on what they say.
  const data = path.join(path.resolve(a.cache!), `sweep-data-${examples}x${tokens}.jsonl`);
  const rng = new Rng(7);
  fs.writeFileSync(data, Array.from({ length: examples }, () => JSON.stringify({ input_ids: Array.from({ length: tokens }, () => 3 + rng.int(TINYLLAMA_SHAPE.vocabSize - 3)) })).join("\n") + "\n");
  const common = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, maxExamples: examples, maxTokens: tokens, device: a.device as DeviceChoice, threads: a.threads ? Number(a.threads) : undefined, stream: a.stream as StreamChoice };
  console.log(`model: ${describeShape(TINYLLAMA_SHAPE)}; data: ${examples} × ${tokens} tokens`);
  const idle = waitIdleNote(Number(a["wait-idle"]));
  const header = benchHeader("sweep", "npm run bench:sweep");
  const loadStart = os.loadavg();
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / GIB).toFixed(0)} GiB; load average at start ${loadStart.map((l) => l.toFixed(2)).join(" ")}${idle}`);

  let started = Date.now();
  const profile = await profileAdapter(common);
  const profileSeconds = (Date.now() - started) / 1000;
  const profileFile = path.join(path.resolve(a.cache!), "sweep-bench.profile.json");
  writeProfile(profileFile, profile);
  console.log(`profile (output criterion): ${profileSeconds.toFixed(1)} s`);

  started = Date.now();
  let last = 0;
  const sweep = await runSweep({
    ...common, profile: profileFile, ...(a.thresholds ? { thresholds: a.thresholds.split(",").map(Number) } : {}),
  }, {
    log: { info: (m) => console.log(`  ${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  ${m}`), warn: (m) => console.log(`warning: ${m}`) },
    progress: { report: (u) => { if (u.step - last > u.total / 20) { last = u.step; } } },
  });
  const seconds = (Date.now() - started) / 1000;
  const loadEnd = os.loadavg();
  const configurations = sweep.points.length + 2;
  console.log(`\n${sweepTable(sweep)}`);
  console.log(`sweep: ${configurations} configurations × ${examples * tokens} tokens in ${seconds.toFixed(1)} s (${(seconds / configurations).toFixed(1)} s each, ` +
    `${((configurations * examples * tokens) / seconds).toFixed(0)} tok/s); profile ${profileSeconds.toFixed(1)} s; load average at end ${loadEnd.map((l) => l.toFixed(2)).join(" ")}`);
  const result = {
    ...header, loadAverageEnd: loadEnd.map((l) => Number(l.toFixed(2))), idleBefore: idle,
    shape: TINYLLAMA_SHAPE, weightBytes: fx.weightBytes, examples, tokensPerExample: tokens,
    device: sweep.measured.device, streamed: sweep.measured.streamed,
    profileSeconds, configurations, sweepSeconds: seconds, secondsPerConfiguration: seconds / configurations,
    tokensPerSecond: (configurations * examples * tokens) / seconds, peakRssBytes: sweep.measured.peak_rss_bytes,
    baseLoss: sweep.base_loss, fullLoss: sweep.full_loss,
    points: sweep.points.map((p) => ({ threshold: p.threshold, kept: (p.kept_layers as number[]).length, loraParams: p.lora_params, loss: p.loss })),
  };
  if (a.json) fs.writeFileSync(a.json, JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result));
}

if (require.main === module) {
  main().then(() => undefined, (e) => { process.exitCode = reportError(e); });
}
