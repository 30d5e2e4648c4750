/**
 * One timed profile pass at a precision, in its own process so its peak RSS is its own, through the product's
 * path: the projections quantized by models/quantizedWeights.ts (into the cache on a miss) and the graph built by
 * LoraForwardRunner, as `lora-drop profile --precision P` runs it. Runs one warm-up and `reps` timed passes, writes
 * the taps to `--out` and prints one JSON line.
 *
 * Usage: node out/scripts/bench/quantPassWorker.js --model DIR --adapter DIR --ids FILE --out FILE
 *        --precision fp32|int8|int4 [--reps 3] [--cache DIR] [--threads N]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { LoraForwardRunner } from "../../extension/core/runtime/loraRunner";
import { quantizeModel } from "../../extension/core/models/quantizedWeights";
import { checkPrecision } from "../../extension/core/quant/precision";
import { makeBatch } from "../../extension/core/data/batch";

/** What the worker prints. */
export interface QuantPassResult {
  precision: string;
  times: number[];
  best: number;
  /** Seconds to quantize the weights (a cache miss) or find them (a hit). */
  quantSeconds: number;
  cacheHit: boolean;
  sessionSeconds: number;
  peakRssBytes: number;
  layers: number;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      model: { type: "string" }, adapter: { type: "string" }, ids: { type: "string" }, out: { type: "string" },
      precision: { type: "string", default: "fp32" }, reps: { type: "string", default: "3" },
      cache: { type: "string", default: path.join(".cache", "bench", "quant") }, threads: { type: "string" },
    },
  });
  if (!a.model || !a.adapter || !a.ids || !a.out) throw new Error("usage: quantPassWorker --model DIR --adapter DIR --ids FILE --out FILE --precision P");
  const precision = checkPrecision(a.precision);
  const model = loadHfModel(a.model);
  const adapter = loadAdapter(a.adapter, model.config);
  const ids = JSON.parse(fs.readFileSync(a.ids, "utf8")) as number[];
  const layers = Math.max(...adapter.loras.map((l) => l.layer)) + 1;
  const t0 = performance.now();
  let cacheHit = true;
  const quantized = await quantizeModel(model, precision, { cacheDir: path.resolve(a.cache!), numLayers: layers, log: { info: (m) => { if (m.startsWith("quantized")) cacheHit = false; }, warn: () => {} } });
  const quantSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const runner = await LoraForwardRunner.create(model, adapter.loras, {
    logits: false, loraNorms: true, device: "cpu", truncateAfterLastLora: true, quantized, ...(a.threads ? { threads: Number(a.threads) } : {}),
  });
  const sessionSeconds = (performance.now() - t1) / 1000;
  const batch = makeBatch([{ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true), example: 0 }]);
  const times: number[] = [];
  let taps: Float32Array = new Float32Array(0);
  for (let rep = 0; rep <= Number(a.reps); rep++) {
    const s = performance.now();
    const out = await runner.run(batch, adapter.loras);
    // The first run is a warm-up: it faults in the mapped weights and sizes the arena.
    if (rep > 0) times.push((performance.now() - s) / 1000);
    taps = out.loraNorms!;
  }
  fs.writeFileSync(a.out, JSON.stringify({ taps: Array.from(taps), tapLayers: runner.graph.tapOrder.map((t) => t.layer) }));
  await runner.dispose();
  const result: QuantPassResult = {
    precision, times, best: Math.min(...times), quantSeconds, cacheHit, sessionSeconds, peakRssBytes: process.resourceUsage().maxRSS * 1024, layers,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
