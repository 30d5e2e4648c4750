/**
 * The profile's forward pass split into segments of consecutive decoder layers (Llama family), each compiled in its
 * own worker thread (threadSession.ts) so that the sessions are created at once, one core each, and run one after
 * another, the hidden states carried between them. For a quantized model most of a session's creation is
 * onnxruntime's single-threaded MatMulNBits prepacking, so on a machine with several cores the segments are ready
 * in about the time of one (measured on the Llama-2-7B shape at int4, 2 cores: two 16-layer sessions in parallel in
 * 2.2–3.3 s, one 32-layer session in 5.7–16 s). The norm taps are those of the whole graph, in its tap order.
 */
import * as os from "node:os";
import { GraphBuilder } from "../onnx/builder";
import { pruneDeadNodes } from "../onnx/deadNodes";
import { buildForward } from "../models";
import { isLlamaFamily } from "../models/arch";
import { HfModel } from "../models/hfModel";
import { ForwardGraph } from "../models/forward";
import { Batch } from "../data/batch";
import { LoraModule } from "../adapter/loraModule";
import type { QuantizedWeights } from "../quant/quantLinear";
import type { Logger } from "../util/progress";
import { slotOf } from "./loraRunner";
import { DeviceChoice, ExecutionProvider } from "./session";
import { ThreadSession, WireTensor } from "./threadSession";

/** Options of a segmented runner. */
export interface SegmentedRunnerOptions {
  /** Layers to run (up to the last LoRA layer) and how many segments to split them into (≥ 2). */
  numLayers: number;
  segments: number;
  device: DeviceChoice;
  threads?: number;
  quantized?: QuantizedWeights;
  log?: Logger;
}

/** Quantized weights at least this large are worth building in parallel segments (smaller ones start in a second). */
const SEGMENTED_MIN_BYTES = 1 << 30;

/**
 * How many segments a quantized whole-model profile should be built in: one per core (at most one per layer, at
 * most 8) for a Llama-family model whose quantized weights reach SEGMENTED_MIN_BYTES, else 1 (one session).
 */
export function profileSegments(architecture: string, quantizedBytes: number, numLayers: number, cores = os.cpus().length): number {
  if (!isLlamaFamily(architecture) || quantizedBytes < SEGMENTED_MIN_BYTES) return 1;
  return Math.max(1, Math.min(cores, numLayers, 8));
}

/** Layer ranges of `segments` near-equal consecutive segments of `numLayers` layers. */
export function segmentRanges(numLayers: number, segments: number): { first: number; end: number }[] {
  const n = Math.max(1, Math.min(segments, numLayers));
  return Array.from({ length: n }, (_, s) => ({ first: Math.floor((s * numLayers) / n), end: Math.floor(((s + 1) * numLayers) / n) }));
}

interface Segment { session: ThreadSession; graph: ForwardGraph; last: boolean }

/** A profile forward pass (norm taps, no logits) as segment sessions in worker threads. */
export class SegmentedForwardRunner {
  private constructor(private readonly segments: Segment[], readonly device: ExecutionProvider, readonly tapOrder: { layer: number; module: string }[]) {}

  /** Builds every segment's graph and creates their sessions in parallel. */
  static async create(model: HfModel, loras: LoraModule[], opts: SegmentedRunnerOptions): Promise<SegmentedForwardRunner> {
    const ranges = segmentRanges(opts.numLayers, opts.segments);
    const slots = loras.map(slotOf);
    const shardFiles = [...model.shards.map((s) => s.file), ...(opts.quantized?.files ?? [])];
    const built = ranges.map((segment, s) => {
      const g = new GraphBuilder();
      const graph = buildForward(g, model, slots, { logits: false, loraNorms: true, quantized: opts.quantized, segment });
      const last = s === ranges.length - 1;
      if (graph.loraNorms) g.output(graph.loraNorms);
      if (!last) g.output(graph.hiddenOut!);
      pruneDeadNodes(g);
      return { bytes: g.toBytes(), graph, last };
    });
    opts.log?.info(`building ${ranges.length} segments of layers (${ranges.map((r) => `${r.first}–${r.end - 1}`).join(", ")}) in parallel`);
    const settled = await Promise.allSettled(built.map((b) => ThreadSession.create(b.bytes, { device: opts.device, shardFiles, threads: opts.threads })));
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) {
      await Promise.all(settled.map((r) => (r.status === "fulfilled" ? r.value.dispose() : undefined)));
      throw (failed as PromiseRejectedResult).reason;
    }
    const sessions = settled.map((r) => (r as PromiseFulfilledResult<ThreadSession>).value);
    opts.log?.info(`execution provider: ${sessions[0]!.device}`);
    const segments = built.map((b, s) => ({ session: sessions[s]!, graph: b.graph, last: b.last }));
    return new SegmentedForwardRunner(segments, sessions[0]!.device, segments.flatMap((s) => s.graph.tapOrder));
  }

  /** Runs one batch through every segment; returns the norm taps [taps, batch, seq] in `tapOrder`. */
  async run(batch: Batch, loras: LoraModule[]): Promise<{ loraNorms: Float32Array }> {
    const byParam = new Map(loras.map((l) => [l.param, l]));
    const dims = [batch.batch, batch.seq];
    const parts: Float32Array[] = [];
    let hidden: WireTensor | undefined;
    for (const seg of this.segments) {
      const g = seg.graph;
      const feeds: Record<string, WireTensor> = { [g.attentionMask]: { type: "int64", data: BigInt64Array.from(batch.mask, BigInt), dims } };
      if (g.inputIds) feeds[g.inputIds] = { type: "int64", data: BigInt64Array.from(batch.ids, BigInt), dims };
      if (g.hiddenIn) feeds[g.hiddenIn] = hidden!;
      for (const inp of g.loraInputs) {
        const l = byParam.get(inp.param);
        if (!l) throw new Error(`no values for LoRA parameter ${inp.param}`);
        // Copies: the feeds' buffers move to the worker thread.
        feeds[inp.A] = { type: "float32", data: l.A.slice(), dims: [inp.r, inp.inFeatures] };
        feeds[inp.B] = { type: "float32", data: l.B.slice(), dims: [inp.outFeatures, inp.r] };
      }
      const fetches = [...(g.loraNorms ? [g.loraNorms] : []), ...(seg.last ? [] : [g.hiddenOut!])];
      const out = await seg.session.run(feeds, fetches);
      if (g.loraNorms) parts.push(out[g.loraNorms]!.data as Float32Array);
      if (!seg.last) hidden = out[g.hiddenOut!];
    }
    // Each part is [taps of the segment, batch, seq]: concatenated along the first axis, they are the whole graph's.
    const loraNorms = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) { loraNorms.set(p, at); at += p.length; }
    return { loraNorms };
  }

  /** Releases every segment's session and thread. */
  async dispose(): Promise<void> {
    await Promise.all(this.segments.map((s) => s.session.dispose()));
  }
}
