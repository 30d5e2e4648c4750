/**
 * One streamed training step (loss + LoRA gradients, streamGrad.ts) with and without prefetching, alternated in
 * one process so both see the same machine load, on the Llama-2-7B-shaped model of `npm run bench:scale` (run
 * that once first to generate .cache/bench-7b). `--layers N` keeps only the first N decoder layers, for a
 * shorter run. Prints each run's wall time and the time the main thread spent reading or waiting for weights.
 *
 * Usage: node out/scripts/bench/benchStreamGrad.js [--layers 8] [--tokens 256] [--rounds 1] [--on-first] [--threads N] [--cache DIR]
 *        [--device cpu|webgpu|cuda]
 */
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { DeviceChoice } from "../../extension/core/runtime/session";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../extension/core/data/batch";
import { countTargets, LoraParam } from "../../extension/core/runtime/lossSession";
import { streamedLoraGradients } from "../../extension/core/stream/streamGrad";
import { loadExamples } from "../../extension/core/data/examples";

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: {
    layers: { type: "string", default: "8" }, tokens: { type: "string", default: "256" }, rounds: { type: "string", default: "1" },
    threads: { type: "string" }, "on-first": { type: "boolean", default: false }, device: { type: "string", default: "cpu" }, cache: { type: "string", default: path.join(process.cwd(), ".cache", "bench-7b") },
  } });
  const model = loadHfModel(path.join(a.cache!, "model"));
  const layers = Math.min(Number(a.layers), model.config.numLayers);
  // Only the first `layers` layers run: the config is cut, the shards are the full model's.
  const cut = { ...model, config: { ...model.config, numLayers: layers } };
  const adapter = loadAdapter(path.join(a.cache!, "adapter"), model.config);
  const loras = adapter.loras.filter((l) => l.layer < layers);
  const params = new Map<string, LoraParam>();
  for (const l of loras) params.set(l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B });
  const batch = makeBatch(loadExamples(model, path.join(a.cache!, `data-${a.tokens}.jsonl`), 1, Number(a.tokens)));
  console.log(`streamed training step: ${layers} of ${model.config.numLayers} layers (Llama-2-7B shape, BF16), ${batch.seq} tokens, 1 layer per block; ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const losses: number[] = [];
  for (let round = 0; round < Number(a.rounds); round++) {
    for (const prefetch of a["on-first"] ? [true, false] : [false, true]) {
      const started = Date.now();
      const r = await streamedLoraGradients(cut, loras.map(slotOf), params, [batch], countTargets(batch),
        { device: a.device as DeviceChoice, threads: a.threads ? Number(a.threads) : undefined, layersPerBlock: 1, prefetch });
      const seconds = (Date.now() - started) / 1000;
      losses.push(r.loss);
      console.log(`  prefetch ${prefetch ? "on " : "off"}: ${seconds.toFixed(1)} s, ${r.readSeconds.toFixed(1)} s reading/waiting for weights, loss ${r.loss.toFixed(4)}; load ${os.loadavg()[0]!.toFixed(2)}`);
    }
  }
  if (losses.some((l) => l !== losses[0])) console.log(`  warning: the losses differ: ${losses.join(", ")}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
