/**
 * Streamed LoRA gradients with activation checkpointing at block boundaries. Forward: block by block (as the
 * profiler streams), keeping only each block's input hidden states. Head: final norm + LM head + the causal-LM
 * cross-entropy of trainGraph.ts, differentiated for d loss / d hidden. Backward: per block in reverse, the block's
 * weights are read again and a block-backward session recomputes the block from its stored input and returns
 * d loss / d input and the LoRA gradients. The backward graph comes from the autodiff seeded with the scalar
 * Σ h_out ⊙ dh_out, whose gradient w.r.t. anything upstream is exactly the vector-Jacobian product with dh_out.
 * Weights are loaded in the order forward 0…N−1, backward N−2…0 (the last block's weights serve its backward
 * too); with prefetching a worker reads the next block of that order while the current one runs (prefetch.ts).
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { buildBackward } from "../onnx/autodiff";
import { HfModel } from "../models/hfModel";
import { Batch } from "../data/batch";
import { createSession, DeviceChoice, f32Tensor, i64Tensor } from "../runtime/session";
import { LoraParam, ParamGrads } from "../runtime/lossSession";
import { StreamHead, type HeadResult } from "./streamHead";
import { BlockGraph, blockKey, blockSlots, buildBlockGraph } from "./blockGraph";
import { LayerWeightReader } from "./layerWeights";
import { BlockSpan, BlockWeightQueue, BlockWeights } from "./prefetch";
import { LoraSlot } from "../models/forward";

/** Options of a streamed gradient computation. */
export interface StreamedGradOptions {
  device: DeviceChoice;
  threads?: number;
  layersPerBlock: number;
  /**
   * Read the next block's weights in a worker thread while a block runs: a second block of float32 weights, as
   * planStreaming's `prefetch` accounts for (pass the plan's flag). Default on.
   */
  prefetch?: boolean;
}

/** The loss (summed over the batches: the step's mean) and the LoRA gradients of one streamed step. */
export interface StreamedGradResult {
  loss: number;
  grads: Map<string, ParamGrads>;
  /** Seconds the main thread spent reading weights or waiting for the prefetcher; whether it prefetched. */
  readSeconds: number;
  prefetched: boolean;
}

interface BackwardBlock { session: Ort.InferenceSession; graph: BlockGraph; dOut: string; dIn: string; grads: Map<string, { A: string | null; B: string | null }> }

/** Builds the block-backward session: inputs as the forward block plus dh_out; outputs dh_in and LoRA gradients. */
async function backwardBlock(model: HfModel, local: LoraSlot[], k: number, opts: StreamedGradOptions): Promise<BackwardBlock> {
  const g = new GraphBuilder();
  const o = new Ops(g);
  const graph = buildBlockGraph(g, model.config, local, k, false);
  const dOut = g.input("d_hidden_out", "float32", ["batch*seq", model.config.hiddenSize]);
  const seed = o.reduceSum(o.mul(graph.hiddenOut, dOut), [0, 1], false);
  const wrt = [graph.hidden, ...graph.loraInputs.flatMap((l) => [l.A, l.B])];
  const d = buildBackward(g, seed, wrt);
  const outputs: string[] = [];
  // A value can be a graph output only once: a gradient already marked gets its own name.
  const mark = (v: string | null | undefined): string | null => {
    if (!v) return null;
    const name = outputs.includes(v) ? o.identity(v) : v;
    g.output(name);
    outputs.push(name);
    return name;
  };
  const dIn = mark(d.get(graph.hidden));
  if (!dIn) throw new Error("the block's input gets no gradient");
  const grads = new Map<string, { A: string | null; B: string | null }>();
  for (const l of graph.loraInputs) grads.set(l.param, { A: mark(d.get(l.A)), B: mark(d.get(l.B)) });
  const { session } = await createSession(g.toBytes(), { device: opts.device, shardFiles: [], threads: opts.threads, backward: true });
  return { session, graph, dOut, dIn, grads };
}

/**
 * One step's loss and LoRA gradients over `batches` (no dropout), streamed. `denominator` is the step's number of
 * target tokens, as for LossSession.run; `slots` and `params` are the training engine's (shared params summed).
 */
export async function streamedLoraGradients(model: HfModel, slots: LoraSlot[], params: Map<string, LoraParam>, batches: Batch[], denominator: number,
  opts: StreamedGradOptions): Promise<StreamedGradResult> {
  const cfg = model.config;
  const H = cfg.hiddenSize;
  const L = cfg.numLayers;
  const reader = new LayerWeightReader(model);
  const sessions: Ort.InferenceSession[] = [];
  const forward = new Map<string, { session: Ort.InferenceSession; graph: BlockGraph }>();
  const backward = new Map<string, BackwardBlock>();
  const grads = new Map<string, ParamGrads>();
  for (const [name, p] of params) grads.set(name, { A: new Float32Array(p.A.length), B: new Float32Array(p.B.length) });
  const globalParam = new Map(slots.map((s) => [`${s.layer}.${s.module}`, s.param]));
  const blocks: { start: number; k: number; local: LoraSlot[]; key: string }[] = [];
  for (let start = 0; start < L; start += opts.layersPerBlock) {
    const k = Math.min(opts.layersPerBlock, L - start);
    const local = blockSlots(slots, start, k);
    blocks.push({ start, k, local, key: blockKey(local, k) });
  }
  // Weights in load order: forward 0…N−1, then backward N−2…0 (block N−1's forward weights serve its backward).
  const order: BlockSpan[] = [...blocks, ...blocks.slice(0, -1).reverse()];
  const queue = new BlockWeightQueue(reader, cfg, order, opts.prefetch ?? true);
  let readMs = 0;
  const take = async () => {
    const t = Date.now();
    const w = await queue.take();
    readMs += Date.now() - t;
    return w;
  };
  // Feeds of a block: its layers' weights and its LoRA values.
  const blockFeeds = (graph: BlockGraph, start: number, weights: BlockWeights) => {
    const feeds: Record<string, Ort.Tensor> = {};
    for (const w of graph.weights) feeds[w.name] = f32Tensor(weights.get(w.name)!, w.shape);
    for (const inp of graph.loraInputs) {
      const p = params.get(globalParam.get(`${start + Number(inp.param.split(".")[0])}.${inp.param.split(".")[1]}`)!)!;
      feeds[inp.A] = f32Tensor(p.A, [inp.r, inp.inFeatures]);
      feeds[inp.B] = f32Tensor(p.B, [inp.outFeatures, inp.r]);
    }
    return feeds;
  };
  try {
    // Forward, keeping each block's inputs (the checkpoints).
    let hidden = batches.map((b) => reader.embed(b.ids));
    const checkpoints: Float32Array[][] = [];
    let lastWeights: BlockWeights | undefined;
    for (let bk = 0; bk < blocks.length; bk++) {
      const b = blocks[bk]!;
      let fwd = forward.get(b.key);
      if (!fwd) {
        const g = new GraphBuilder();
        const graph = buildBlockGraph(g, cfg, b.local, b.k, false);
        g.output(graph.hiddenOut);
        const { session } = await createSession(g.toBytes(), { device: opts.device, shardFiles: [], threads: opts.threads });
        sessions.push(session);
        fwd = { session, graph };
        forward.set(b.key, fwd);
      }
      const weights = await take();
      const feeds = blockFeeds(fwd.graph, b.start, weights);
      checkpoints.push(hidden);
      const next: Float32Array[] = [];
      for (let bi = 0; bi < batches.length; bi++) {
        const batch = batches[bi]!;
        feeds[fwd.graph.hidden] = f32Tensor(hidden[bi]!, [batch.batch * batch.seq, H]);
        feeds[fwd.graph.attentionMask] = i64Tensor(batch.mask, [batch.batch, batch.seq]);
        next.push((await fwd.session.run(feeds))[fwd.graph.hiddenOut]!.data as Float32Array);
      }
      hidden = next;
      if (bk === blocks.length - 1) lastWeights = weights;
      else queue.release(weights);
    }
    // Head: loss and d loss / d hidden per batch (the prefetcher meanwhile reads the first backward block).
    const headRun = await StreamHead.create(model, opts, true);
    let head: HeadResult;
    try {
      head = await headRun.run(batches, hidden, denominator);
    } finally {
      await headRun.close();
    }
    let dHidden = head.dHidden!;
    // Backward, block by block in reverse, recomputing each block from its checkpoint.
    for (let bk = blocks.length - 1; bk >= 0; bk--) {
      const b = blocks[bk]!;
      let bwd = backward.get(b.key);
      if (!bwd) {
        bwd = await backwardBlock(model, b.local, b.k, opts);
        sessions.push(bwd.session);
        backward.set(b.key, bwd);
      }
      const weights = bk === blocks.length - 1 && lastWeights ? lastWeights : await take();
      const feeds = blockFeeds(bwd.graph, b.start, weights);
      const prev: Float32Array[] = [];
      for (let bi = 0; bi < batches.length; bi++) {
        const batch = batches[bi]!;
        const n = batch.batch * batch.seq;
        feeds[bwd.graph.hidden] = f32Tensor(checkpoints[bk]![bi]!, [n, H]);
        feeds[bwd.graph.attentionMask] = i64Tensor(batch.mask, [batch.batch, batch.seq]);
        feeds[bwd.dOut] = f32Tensor(dHidden[bi]!, [n, H]);
        const out = await bwd.session.run(feeds);
        prev.push(out[bwd.dIn]!.data as Float32Array);
        for (const [localParam, names] of bwd.grads) {
          const [j, module] = localParam.split(".") as [string, string];
          const acc = grads.get(globalParam.get(`${b.start + Number(j)}.${module}`)!)!;
          for (const which of ["A", "B"] as const) {
            const name = names[which];
            if (!name) continue;
            const gv = out[name]!.data as Float32Array;
            const into = acc[which];
            for (let i = 0; i < into.length; i++) into[i]! += gv[i]!;
          }
        }
      }
      checkpoints[bk] = [];
      dHidden = prev;
      queue.release(weights);
    }
    return { loss: head.loss, grads, readSeconds: readMs / 1000, prefetched: queue.prefetching };
  } finally {
    await queue.close();
    reader.close();
    for (const s of sessions) await s.release();
  }
}
