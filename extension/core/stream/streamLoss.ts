/**
 * The causal-LM loss of several LoRA configurations over the same batches, streamed: the decoder runs block by
 * block from the shards as in the profiler, but each block's weights, once read, run every configuration of a
 * group, whose hidden states are carried side by side. Weights are thus read once per group rather than once per
 * configuration, which is what a streamed run costs most. Then the head (streamHead.ts) gives each loss.
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { HfModel } from "../models/hfModel";
import { Batch } from "../data/batch";
import { LoraSlot } from "../models/forward";
import { createSession, DeviceChoice, f32Tensor, i64Tensor } from "../runtime/session";
import type { LoraParam } from "../runtime/lossSession";
import { RunContext } from "../util/progress";
import { throwIfCancelled } from "../util/errors";
import { BlockGraph, blockKey, blockSlots, buildBlockGraph } from "./blockGraph";
import { LayerWeightReader } from "./layerWeights";
import { BlockSpan, BlockWeightQueue } from "./prefetch";
import { StreamHead } from "./streamHead";
import { PeakRss } from "./peakMemory";

/** Options of a streamed evaluation. */
export interface StreamedLossOptions {
  device: DeviceChoice;
  threads?: number;
  layersPerBlock: number;
  /** Read the next block's weights in a worker thread while a block runs (the plan's flag). */
  prefetch?: boolean;
  /** Configurations carried through the blocks together (their hidden states are all held at once). */
  groupSize: number;
  /** Sampled after each block load, when given. */
  peak?: PeakRss;
  /** Called when a configuration's loss is known (index, loss). */
  onLoss?: (index: number, loss: number) => void;
}

/**
 * The loss of each configuration: `params[c]` holds the values of every slot's `param` for configuration c; the
 * loss of one configuration is the sum over batches, each weighted by 1/`denominator` (as LossSession.run).
 */
export async function streamedLosses(model: HfModel, slots: LoraSlot[], params: readonly Map<string, LoraParam>[], batches: Batch[], denominator: number,
  opts: StreamedLossOptions, ctx: RunContext = {}): Promise<{ losses: number[]; device: string }> {
  const cfg = model.config;
  const H = cfg.hiddenSize;
  const L = cfg.numLayers;
  const reader = new LayerWeightReader(model);
  const cache = new Map<string, { session: Ort.InferenceSession; graph: BlockGraph }>();
  const globalParam = new Map(slots.map((s) => [`${s.layer}.${s.module}`, s.param]));
  const blocks: (BlockSpan & { local: LoraSlot[]; key: string })[] = [];
  for (let start = 0; start < L; start += opts.layersPerBlock) {
    const k = Math.min(opts.layersPerBlock, L - start);
    const local = blockSlots(slots, start, k);
    blocks.push({ start, k, local, key: blockKey(local, k) });
  }
  const groups: number[][] = [];
  for (let c = 0; c < params.length; c += Math.max(1, opts.groupSize)) groups.push(params.map((_, i) => i).slice(c, c + Math.max(1, opts.groupSize)));
  // Every group reads the blocks in forward order; the prefetcher follows that order across groups.
  const queue = new BlockWeightQueue(reader, cfg, groups.flatMap(() => blocks), opts.prefetch ?? true);
  let device = "cpu";
  const losses = new Array<number>(params.length).fill(NaN);
  const head = await StreamHead.create(model, opts, false);
  try {
    const embedded = batches.map((b) => reader.embed(b.ids));
    let done = 0;
    for (const group of groups) {
      let hidden = group.map(() => embedded);
      for (const b of blocks) {
        throwIfCancelled(ctx.signal, "evaluation");
        let block = cache.get(b.key);
        if (!block) {
          const g = new GraphBuilder();
          const graph = buildBlockGraph(g, cfg, b.local, b.k, false);
          g.output(graph.hiddenOut);
          const made = await createSession(g.toBytes(), { device: opts.device, shardFiles: [], threads: opts.threads, log: ctx.log });
          device = made.device;
          block = { session: made.session, graph };
          cache.set(b.key, block);
        }
        const weights = await queue.take();
        opts.peak?.sample();
        const feeds: Record<string, Ort.Tensor> = {};
        for (const w of block.graph.weights) feeds[w.name] = f32Tensor(weights.get(w.name)!, w.shape);
        const next: Float32Array[][] = [];
        for (let gi = 0; gi < group.length; gi++) {
          // This configuration's LoRA values for the block's slots (block-local param `<j>.<module>`).
          for (const inp of block.graph.loraInputs) {
            const dot = inp.param.indexOf(".");
            const p = params[group[gi]!]!.get(globalParam.get(`${b.start + Number(inp.param.slice(0, dot))}.${inp.param.slice(dot + 1)}`)!)!;
            feeds[inp.A] = f32Tensor(p.A, [inp.r, inp.inFeatures]);
            feeds[inp.B] = f32Tensor(p.B, [inp.outFeatures, inp.r]);
          }
          const out: Float32Array[] = [];
          for (let bi = 0; bi < batches.length; bi++) {
            const batch = batches[bi]!;
            feeds[block.graph.hidden] = f32Tensor(hidden[gi]![bi]!, [batch.batch * batch.seq, H]);
            feeds[block.graph.attentionMask] = i64Tensor(batch.mask, [batch.batch, batch.seq]);
            out.push((await block.session.run(feeds))[block.graph.hiddenOut]!.data as Float32Array);
          }
          next.push(out);
        }
        hidden = next;
        queue.release(weights);
        ctx.progress?.report({ step: done * L + group.length * (b.start + b.k), total: params.length * L, message: `layer ${b.start + b.k}/${L} of configurations ${group[0]! + 1}–${group[group.length - 1]! + 1}` });
      }
      for (let gi = 0; gi < group.length; gi++) {
        const { loss } = await head.run(batches, hidden[gi]!, denominator);
        losses[group[gi]!] = loss;
        opts.onLoss?.(group[gi]!, loss);
      }
      // The LM head is read again by the next group, so it is not held during that group's blocks.
      head.releaseWeights();
      done += group.length;
    }
    return { losses, device };
  } finally {
    await queue.close();
    reader.close();
    await head.close();
    for (const b of cache.values()) await b.session.release();
  }
}
