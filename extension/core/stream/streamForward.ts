/**
 * Streamed forward pass for the profiler: the embedding rows are read in JavaScript, then the decoder runs block
 * by block (k consecutive layers per block): each block's weights are read from the shards into reused float32
 * buffers, one cached session per block shape runs every batch's hidden states through it and emits the LoRA norm
 * taps, and the hidden states are carried to the next block. Only one block's weights are resident at a time.
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { HfModel } from "../models/hfModel";
import { slotOf } from "../runtime/loraRunner";
import { createSession, DeviceChoice, f32Tensor, i64Tensor } from "../runtime/session";
import { Batch } from "../data/batch";
import { RunContext } from "../util/progress";
import { throwIfCancelled } from "../util/errors";
import { BlockGraph, blockKey, blockSlots, blockWeightInputs, buildBlockGraph } from "./blockGraph";
import { BlockWeights, WeightPrefetcher } from "./prefetch";
import { LayerWeightReader } from "./layerWeights";
import { PeakRss } from "./peakMemory";
import { LoraModule } from "../adapter/loraModule";

/** Options of a streamed run. */
export interface StreamedForwardOptions {
  device: DeviceChoice;
  threads?: number;
  layersPerBlock: number;
  /** Read the next block's weights in a worker thread while a block runs (twice the weight buffers). */
  prefetch?: boolean;
  /** Layers to run (default: up to the last LoRA layer). */
  numLayers?: number;
  /** Sampled after each block load, when given. */
  peak?: PeakRss;
}

/** The norms of a streamed run, laid out as the whole-model runner's. */
export interface StreamedNorms {
  device: string;
  /** Taps in forward order (layer, then module order of the layer). */
  tapOrder: { layer: number; module: string }[];
  /** Per batch: [taps, batch, seq]. */
  loraNorms: Float32Array[];
  /** Per batch: the hidden states [batch*seq, hidden] after the last layer run. */
  hidden: Float32Array[];
  /** Seconds from the start until the first block had run on the first batch. */
  firstBlockSeconds: number;
  sessions: number;
  /** Seconds spent reading and converting weights, and running block sessions. */
  readSeconds: number;
  runSeconds: number;
}

interface CachedBlock { session: Ort.InferenceSession; graph: BlockGraph }

/** Runs the streamed forward pass over all batches and returns the LoRA norm taps of every batch. */
export async function streamedLoraNorms(model: HfModel, loras: LoraModule[], batches: Batch[], opts: StreamedForwardOptions, ctx: RunContext = {}): Promise<StreamedNorms> {
  const started = Date.now();
  const cfg = model.config;
  const H = cfg.hiddenSize;
  const L = opts.numLayers ?? (loras.length ? Math.max(...loras.map((l) => l.layer)) + 1 : 0);
  const slots = loras.map(slotOf);
  const byLayerModule = new Map(loras.map((l) => [`${l.layer}.${l.module}`, l]));
  const reader = new LayerWeightReader(model);
  const cache = new Map<string, CachedBlock>();
  let device = "cpu";
  let firstBlockSeconds = 0;
  let readMs = 0;
  let prefetcherUsed = false;
  let runMs = 0;
  const tapOrder: StreamedNorms["tapOrder"] = [];
  const perBatchTaps: Float32Array[][] = batches.map(() => []);
  try {
    const hidden = batches.map((b) => reader.embed(b.ids));
    const blocks: { start: number; k: number }[] = [];
    for (let start = 0; start < L; start += opts.layersPerBlock) blocks.push({ start, k: Math.min(opts.layersPerBlock, L - start) });
    const prefetcher = opts.prefetch && blocks.length > 1 ? new WeightPrefetcher(reader) : undefined;
    prefetcherUsed = prefetcher !== undefined;
    const fetch = (b: { start: number; k: number }) => prefetcher!.start(b.start, b.k, blockWeightInputs(cfg, b.k));
    let next = prefetcher && blocks.length ? fetch(blocks[0]!) : undefined;
    try {
      for (let bk = 0; bk < blocks.length; bk++) {
        const { start, k } = blocks[bk]!;
        throwIfCancelled(ctx.signal, "profile");
        const local = blockSlots(slots, start, k);
        const key = blockKey(local, k);
        let block = cache.get(key);
        if (!block) {
          const g = new GraphBuilder();
          const graph = buildBlockGraph(g, cfg, local, k, true);
          g.output(graph.hiddenOut);
          if (graph.loraNorms) g.output(graph.loraNorms);
          const made = await createSession(g.toBytes(), { device: opts.device, shardFiles: [], threads: opts.threads, log: ctx.log });
          device = made.device;
          block = { session: made.session, graph };
          cache.set(key, block);
          ctx.log?.info(`streamed block of ${k} layer(s) compiled (${cache.size} distinct)`);
        }
        const { graph, session } = block;
        // Weights of every layer of the block: from the prefetcher (then start reading the next block) or read now.
        const readStart = Date.now();
        let weights: BlockWeights;
        if (next) {
          weights = await next();
          next = bk + 1 < blocks.length ? fetch(blocks[bk + 1]!) : undefined;
        } else {
          weights = new Map();
          for (let j = 0; j < k; j++) for (const [name, buf] of reader.readLayer(start + j, graph.weights.filter((w) => w.local === j))) weights.set(name, buf);
        }
        const feeds: Record<string, Ort.Tensor> = {};
        for (const w of graph.weights) feeds[w.name] = f32Tensor(weights.get(w.name)!, w.shape);
        readMs += Date.now() - readStart;
        for (const inp of graph.loraInputs) {
          const [j, module] = [Number(inp.param.slice(0, inp.param.indexOf("."))), inp.param.slice(inp.param.indexOf(".") + 1)];
          const l = byLayerModule.get(`${start + j}.${module}`)!;
          feeds[inp.A] = f32Tensor(l.A, [inp.r, inp.inFeatures]);
          feeds[inp.B] = f32Tensor(l.B, [inp.outFeatures, inp.r]);
        }
        opts.peak?.sample();
        const runStart = Date.now();
        for (let bi = 0; bi < batches.length; bi++) {
          const b = batches[bi]!;
          feeds[graph.hidden] = f32Tensor(hidden[bi]!, [b.batch * b.seq, H]);
          feeds[graph.attentionMask] = i64Tensor(b.mask, [b.batch, b.seq]);
          const out = await session.run(feeds);
          hidden[bi] = out[graph.hiddenOut]!.data as Float32Array;
          if (graph.loraNorms) perBatchTaps[bi]!.push(out[graph.loraNorms]!.data as Float32Array);
          if (start === 0 && bi === 0) firstBlockSeconds = (Date.now() - started) / 1000;
        }
        runMs += Date.now() - runStart;
        tapOrder.push(...graph.tapOrder.map((t) => ({ layer: t.layer + start, module: t.module })));
        ctx.progress?.report({ step: start + k, total: L, message: `streaming the model: layer ${start + k}/${L}` });
        prefetcher?.recycle(weights);
      }
    } finally {
      await prefetcher?.close();
    }
    const loraNorms = perBatchTaps.map((parts) => {
      const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) { all.set(p, at); at += p.length; }
      return all;
    });
    ctx.log?.info(`streamed ${L} layers: ${(readMs / 1000).toFixed(1)} s waiting for weights${prefetcherUsed ? " (prefetched in a worker thread)" : ""}, ${(runMs / 1000).toFixed(1)} s in block sessions`);
    return { device, tapOrder, loraNorms, hidden, firstBlockSeconds, sessions: cache.size, readSeconds: readMs / 1000, runSeconds: runMs / 1000 };
  } finally {
    reader.close();
    for (const b of cache.values()) await b.session.release();
  }
}
