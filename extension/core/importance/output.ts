/**
 * LoRA-drop's `output` criterion: runs base model + LoRA over the examples and records, for every LoRA module, the
 * squared norm of its output s·B·A·x at every token (computed inside the graph, whole or streamed block by block);
 * a layer's importance is the sum over its modules and tokens.
 */
import * as fs from "node:fs";
import { batchesOf, makeBatch, type Batch } from "../data/batch";
import { LoraForwardRunner } from "../runtime/loraRunner";
import type { RunContext } from "../util/progress";
import { throwIfCancelled, LoraDropError } from "../util/errors";
import { defaultMemoryBudget, describePlan, planStreaming, STREAMED_ARCHITECTURES } from "../stream/memoryBudget";
import { streamedLoraNorms } from "../stream/streamForward";
import { PeakRss } from "../stream/peakMemory";
import { quantizeModel } from "../models/quantizedWeights";
import { profileSegments, SegmentedForwardRunner } from "../runtime/segmentedRunner";
import { firstProvider } from "../runtime/session";
import { checkPrecision } from "../quant/precision";
import { assembleProfile, assertFiniteNorms, loadProfileInputs, zeroTable } from "./assemble";
import { PROFILE_DEFAULTS, type OnnxProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";

/** Profiles an adapter with the output criterion; the profile holds every token's norms. */
export async function profileOutput(opts: OnnxProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const started = Date.now();
  const { model, adapter, examples } = loadProfileInputs(opts);
  const L = model.config.numLayers;
  const modules = adapter.modules;
  const precision = checkPrecision(opts.precision);
  throwIfCancelled(ctx.signal, "profile");

  const norms: Record<string, number[][][]> = {};
  for (const m of modules) norms[m] = Array.from({ length: L }, () => examples.map((e) => new Array(e.ids.length).fill(0)));
  const perModuleRaw = zeroTable(modules, L);

  let device = "cpu";
  const peak = new PeakRss().start();
  const totalTokens = examples.reduce((a, e) => a + e.ids.length, 0);
  let peakRss = 0;
  try {
    const batches = batchesOf(examples, opts.batchSize ?? PROFILE_DEFAULTS.batchSize).map((group) => makeBatch(group));
    const accumulate = (batch: Batch, loraNorms: Float32Array, taps: { layer: number; module: string }[]) => {
      taps.forEach((tap, ti) => {
        batch.examples.forEach((ex, b) => {
          const row = norms[tap.module]![tap.layer]![ex.example]!;
          for (let t = 0; t < ex.ids.length; t++) {
            const v = loraNorms[(ti * batch.batch + b) * batch.seq + t]!;
            row[t] = v;
            perModuleRaw[tap.module]![tap.layer]! += v;
          }
        });
      });
    };
    const lastLora = adapter.loras.length ? Math.max(...adapter.loras.map((l) => l.layer)) + 1 : 0;
    // Streaming builds Llama-family blocks; other architectures run whole.
    const streamable = (STREAMED_ARCHITECTURES as readonly string[]).includes(model.config.architecture);
    if (!streamable && opts.stream === "on") throw new LoraDropError("INVALID_ARGUMENT", `layer streaming supports ${STREAMED_ARCHITECTURES.join(", ")} models, not ${model.config.architecture}`, opts.modelDir, "stream");
    const plan = planStreaming(model.config, {
      batch: Math.max(1, ...batches.map((b) => b.batch)), seq: Math.max(1, ...batches.map((b) => b.seq)), totalTokens, layers: lastLora,
    }, opts.memoryBudget ?? defaultMemoryBudget(opts.device ?? "auto"), streamable ? opts.stream ?? "auto" : "off", 0, precision);
    opts.onPlan?.(plan);
    ctx.log?.info(describePlan(plan));
    if (plan.stream) {
      const res = await streamedLoraNorms(model, adapter.loras, batches, { device: opts.device ?? "auto", threads: opts.threads, layersPerBlock: plan.layersPerBlock, prefetch: plan.prefetch, peak }, ctx);
      device = res.device;
      batches.forEach((batch, bi) => accumulate(batch, res.loraNorms[bi]!, res.tapOrder));
    } else {
      // Building and compiling the graph can take seconds on a large model: say so before the first batch.
      ctx.progress?.report({ step: 0, total: totalTokens, message: `preparing the model (${L} layers)` });
      const quantized = await quantizeModel(model, precision, { cacheDir: opts.quantCacheDir, numLayers: lastLora, signal: ctx.signal, log: ctx.log });
      // A large quantized model on the CPU is built as segments in parallel threads (runtime/segmentedRunner.ts).
      const segments = quantized && firstProvider(opts.device ?? "auto") === "cpu" ? profileSegments(model.config.architecture, quantized.files.reduce((a, f) => a + fs.statSync(f).size, 0), lastLora) : 1;
      const runner = segments > 1
        ? await SegmentedForwardRunner.create(model, adapter.loras, { numLayers: lastLora, segments, device: opts.device ?? "auto", threads: opts.threads, quantized, log: ctx.log })
        : await LoraForwardRunner.create(model, adapter.loras, {
          logits: false, loraNorms: true, device: opts.device ?? "auto", threads: opts.threads, truncateAfterLastLora: true, quantized, log: ctx.log,
        });
      const tapOrder = runner instanceof SegmentedForwardRunner ? runner.tapOrder : runner.graph.tapOrder;
      device = runner.device;
      try {
        let done = 0;
        for (const batch of batches) {
          throwIfCancelled(ctx.signal, "profile");
          const { loraNorms } = await runner.run(batch, adapter.loras);
          accumulate(batch, loraNorms!, tapOrder);
          done += batch.examples.reduce((a, e) => a + e.ids.length, 0);
          const secs = (Date.now() - started) / 1000;
          ctx.progress?.report({ step: done, total: totalTokens, message: `running the model: ${done}/${totalTokens} tokens`, tokensPerSecond: done / Math.max(secs, 1e-3) });
        }
      } finally {
        await runner.dispose();
      }
    }
  } finally {
    peakRss = peak.stop();
  }

  assertFiniteNorms(perModuleRaw, adapter, opts.adapterDir, model.dir);
  return assembleProfile({ opts, model, adapter, examples, criterion: "output", device, perModuleRaw, norms, started, peakRss });
}
