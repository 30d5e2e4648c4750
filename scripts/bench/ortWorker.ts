/**
 * One onnxruntime measurement of `npm run bench`, in its own process so that its peak RSS is its own: builds the
 * profile graph (or the full forward with logits), creates the CPU session, runs one warm-up and `reps` timed
 * passes, and prints one JSON line. The taps and the last token's logits go to `--out` for the accuracy check.
 *
 * Usage: node out/scripts/bench/ortWorker.js --model DIR --adapter DIR --ids FILE --mode profile|forward
 *        --out FILE [--reps 3] [--threads N] [--prepack 0|1] [--config key=value ...] [--layers N] [--prune 0|1]
 *        [--device cpu|webgpu|cuda] [--linear gemm|matmul]
 * (`--layers N` runs only the first N layers: quick A/B comparisons of settings while tuning.)
 */
import * as fs from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { GraphBuilder } from "../../extension/core/onnx/builder";
import { buildLlamaForward } from "../../extension/core/models/llama";
import { slotOf } from "../../extension/core/runtime/loraRunner";
import { pruneDeadNodes } from "../../extension/core/onnx/deadNodes";
import { createSession, f32Tensor, i64Tensor } from "../../extension/core/runtime/session";

/** What the worker prints. */
export interface OrtWorkerResult {
  times: number[];
  best: number;
  /** Process CPU seconds (user + system) of the fastest run: a contention-robust cost when spinning is off. */
  bestCpu: number;
  sessionSeconds: number;
  peakRssBytes: number;
  layers: number;
  /** The execution provider the session ran on. */
  device: string;
  /** Resident anonymous and file-backed (memory-mapped weights) bytes after the runs, where /proc says (Linux). */
  rssAnonBytes?: number;
  rssFileBytes?: number;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      model: { type: "string" }, adapter: { type: "string" }, ids: { type: "string" }, mode: { type: "string" },
      out: { type: "string" }, reps: { type: "string", default: "3" }, threads: { type: "string" },
      prepack: { type: "string", default: "1" },
      config: { type: "string", multiple: true, default: [] }, layers: { type: "string" }, prune: { type: "string", default: "1" },
      device: { type: "string", default: "cpu" }, linear: { type: "string", default: "gemm" },
    },
  });
  if (!a.model || !a.adapter || !a.ids || !a.out || (a.mode !== "profile" && a.mode !== "forward")) {
    throw new Error("usage: ortWorker --model DIR --adapter DIR --ids FILE --mode profile|forward --out FILE");
  }
  const model = loadHfModel(a.model);
  const adapter = loadAdapter(a.adapter, model.config);
  const ids = JSON.parse(fs.readFileSync(a.ids, "utf8")) as number[];
  const forward = a.mode === "forward";
  // The same graph LoraForwardRunner builds for profiling (truncated after the last LoRA layer, no LM head) or
  // for evaluation (all layers, logits); built here so that the bench can pass session settings under study.
  const layers = a.layers ? Number(a.layers) : forward ? model.config.numLayers : Math.max(...adapter.loras.map((l) => l.layer)) + 1;
  const g = new GraphBuilder();
  const graph = buildLlamaForward(g, model, adapter.loras.map(slotOf), {
    logits: forward, loraNorms: true, numLayers: layers, linearAsMatMul: a.linear === "matmul",
  });
  if (graph.logits) g.output(graph.logits);
  g.output(graph.loraNorms!);
  if (a.prune !== "0") pruneDeadNodes(g);
  const config = Object.fromEntries(a.config.map((kv) => { const i = kv.indexOf("="); return [kv.slice(0, i), kv.slice(i + 1)]; }));
  const t0 = performance.now();
  if (!["cpu", "webgpu", "cuda"].includes(a.device!)) throw new Error(`--device ${a.device}: expected cpu, webgpu or cuda`);
  const { session, device } = await createSession(g.toBytes(), {
    device: a.device as "cpu" | "webgpu" | "cuda", shardFiles: model.shards.map((s) => s.file), prepack: a.prepack !== "0",
    ...(a.threads ? { threads: Number(a.threads) } : {}), config,
  });
  const sessionSeconds = (performance.now() - t0) / 1000;
  const feeds: Record<string, ReturnType<typeof f32Tensor>> = {
    [graph.inputIds]: i64Tensor(ids, [1, ids.length]),
    [graph.attentionMask]: i64Tensor(ids.map(() => 1), [1, ids.length]),
  };
  const byParam = new Map(adapter.loras.map((l) => [l.param, l]));
  for (const inp of graph.loraInputs) {
    const l = byParam.get(inp.param)!;
    feeds[inp.A] = f32Tensor(l.A, [inp.r, inp.inFeatures]);
    feeds[inp.B] = f32Tensor(l.B, [inp.outFeatures, inp.r]);
  }
  const times: number[] = [];
  const cpus: number[] = [];
  let out: Awaited<ReturnType<typeof session.run>> = {};
  for (let rep = 0; rep <= Number(a.reps); rep++) {
    const s = performance.now();
    const c = process.cpuUsage();
    out = await session.run(feeds);
    // The first run is a warm-up: it faults in the memory-mapped weights and sizes the arena.
    if (rep > 0) {
      times.push((performance.now() - s) / 1000);
      const used = process.cpuUsage(c);
      cpus.push((used.user + used.system) / 1e6);
    }
  }
  const taps = Array.from(out[graph.loraNorms!]!.data as Float32Array);
  const V = model.config.vocabSize;
  const logits = graph.logits ? Array.from((out[graph.logits]!.data as Float32Array).subarray((ids.length - 1) * V, ids.length * V)) : null;
  fs.writeFileSync(a.out, JSON.stringify({ taps, last_logits: logits }));
  const status = fs.existsSync("/proc/self/status") ? fs.readFileSync("/proc/self/status", "utf8") : "";
  const kib = (key: string) => { const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status); return m ? Number(m[1]) * 1024 : undefined; };
  const rssAnonBytes = kib("RssAnon"), rssFileBytes = kib("RssFile");
  await session.release();
  const result: OrtWorkerResult = {
    times, best: Math.min(...times), bestCpu: Math.min(...cpus), sessionSeconds, peakRssBytes: process.resourceUsage().maxRSS * 1024, layers, device, rssAnonBytes, rssFileBytes,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
