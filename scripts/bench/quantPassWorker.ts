/**
 * One timed profile pass with the projections in a given precision (see quantGraph.ts), in its own process so its
 * peak RSS is its own: builds the graph (quantizing into the cache on a miss), creates the CPU session, runs one
 * warm-up and `reps` timed passes, writes the taps to `--out` and prints one JSON line.
 *
 * Usage: node out/scripts/bench/quantPassWorker.js --model DIR --adapter DIR --ids FILE --out FILE
 *        --precision fp32|dq8|int4[-blkN][-accL][-zp]|int8[…] [--reps 3] [--layers N] [--cache DIR] [--threads N]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../extension/core/runtime/loraRunner";
import { createSession, f32Tensor, i64Tensor } from "../../extension/core/runtime/session";
import { buildQuantProfile, parsePrecision } from "./quantGraph";

/** What the worker prints. */
export interface QuantPassResult {
  precision: string;
  times: number[];
  best: number;
  buildSeconds: number;
  quantSeconds: number;
  cacheHits: number;
  cacheMisses: number;
  sessionSeconds: number;
  peakRssBytes: number;
  layers: number;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      model: { type: "string" }, adapter: { type: "string" }, ids: { type: "string" }, out: { type: "string" },
      precision: { type: "string", default: "fp32" }, reps: { type: "string", default: "3" }, layers: { type: "string" },
      cache: { type: "string", default: path.join(".cache", "bench", "quant") }, threads: { type: "string" },
    },
  });
  if (!a.model || !a.adapter || !a.ids || !a.out) throw new Error("usage: quantPassWorker --model DIR --adapter DIR --ids FILE --out FILE --precision P");
  const model = loadHfModel(a.model);
  const adapter = loadAdapter(a.adapter, model.config);
  const ids = JSON.parse(fs.readFileSync(a.ids, "utf8")) as number[];
  const layers = a.layers ? Number(a.layers) : Math.max(...adapter.loras.map((l) => l.layer)) + 1;
  const t0 = performance.now();
  const graph = await buildQuantProfile(model, adapter.loras.map(slotOf), layers, parsePrecision(a.precision!), path.resolve(a.cache!));
  const buildSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const { session } = await createSession(graph.bytes, { device: "cpu", shardFiles: graph.shardFiles, ...(a.threads ? { threads: Number(a.threads) } : {}) });
  const sessionSeconds = (performance.now() - t1) / 1000;
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
  let taps: Float32Array = new Float32Array(0);
  for (let rep = 0; rep <= Number(a.reps); rep++) {
    const s = performance.now();
    const out = await session.run(feeds);
    // The first run is a warm-up: it faults in the mapped weights and sizes the arena.
    if (rep > 0) times.push((performance.now() - s) / 1000);
    taps = out[graph.loraNorms]!.data as Float32Array;
  }
  fs.writeFileSync(a.out, JSON.stringify({ taps: Array.from(taps), tapLayers: graph.tapLayers }));
  await session.release();
  const result: QuantPassResult = {
    precision: a.precision!, times, best: Math.min(...times), buildSeconds, quantSeconds: graph.quantSeconds, cacheHits: graph.cacheHits,
    cacheMisses: graph.cacheMisses, sessionSeconds, peakRssBytes: process.resourceUsage().maxRSS * 1024, layers,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
