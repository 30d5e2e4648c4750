/**
 * A compiled forward session of base model + LoRA, with the LoRA parameters fed as inputs.
 * Used by the profiler (norm taps) and by tests and evaluation (logits).
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { pruneDeadNodes } from "../onnx/deadNodes";
import { buildForward } from "../models";
import { HfModel } from "../models/hfModel";
import { createSession, DeviceChoice, ExecutionProvider, f32Tensor, i64Tensor } from "./session";
import { Batch } from "../data/batch";
import type { Logger } from "../util/progress";
import { ForwardGraph, LoraSlot } from "../models/forward";
import { LoraModule } from "../adapter/loraModule";
import type { QuantizedWeights } from "../quant/quantLinear";

/** The graph-facing shape of a LoRA module. */
export function slotOf(l: LoraModule): LoraSlot {
  return { layer: l.layer, module: l.module, param: l.param, r: l.r, scale: l.scale, inFeatures: l.inFeatures, outFeatures: l.outFeatures };
}

/** Options of a forward runner. */
export interface RunnerOptions {
  logits: boolean;
  loraNorms: boolean;
  device: DeviceChoice;
  threads?: number;
  prepack?: boolean;
  /** Build only the layers up to the last LoRA layer (enough for norm taps). */
  truncateAfterLastLora?: boolean;
  /** Decoder projections as MatMul with transposed weights (see ForwardOptions.linearAsMatMul). */
  linearAsMatMul?: boolean;
  /** Quantized projection weights (models/quantizedWeights.ts), built for at least the layers this graph runs. */
  quantized?: QuantizedWeights;
  log?: Logger;
}

/** Outputs of one batch. */
export interface RunResult {
  /** [batch, seq, vocab] when built. */
  logits?: Float32Array;
  /** [taps, batch, seq] when built, taps in `tapOrder`. */
  loraNorms?: Float32Array;
}

/** A session computing the forward pass of one model with LoRA inputs of one layout. */
export class LoraForwardRunner {
  private constructor(
    readonly session: Ort.InferenceSession,
    readonly device: ExecutionProvider,
    readonly graph: ForwardGraph,
  ) {}

  /** Builds the graph and creates the session. */
  static async create(model: HfModel, loras: LoraModule[], opts: RunnerOptions): Promise<LoraForwardRunner> {
    const g = new GraphBuilder();
    const numLayers = opts.truncateAfterLastLora && !opts.logits && loras.length
      ? Math.max(...loras.map((l) => l.layer)) + 1
      : undefined;
    const graph = buildForward(g, model, loras.map(slotOf), { logits: opts.logits, loraNorms: opts.loraNorms, numLayers, linearAsMatMul: opts.linearAsMatMul, quantized: opts.quantized });
    if (graph.logits) g.output(graph.logits);
    if (graph.loraNorms) g.output(graph.loraNorms);
    // The profile graph's last layer is mostly dead (only the path to its last tap matters); ORT would run it all.
    pruneDeadNodes(g);
    const { session, device } = await createSession(g.toBytes(), {
      device: opts.device, shardFiles: [...model.shards.map((s) => s.file), ...(opts.quantized?.files ?? [])], threads: opts.threads, prepack: opts.prepack, log: opts.log,
    });
    return new LoraForwardRunner(session, device, graph);
  }

  /** Runs one batch with the given LoRA parameter values. */
  async run(batch: Batch, loras: LoraModule[]): Promise<RunResult> {
    const feeds: Record<string, Ort.Tensor> = {
      [this.graph.inputIds]: i64Tensor(batch.ids, [batch.batch, batch.seq]),
      [this.graph.attentionMask]: i64Tensor(batch.mask, [batch.batch, batch.seq]),
      ...(this.graph.tokenTypeIds ? { [this.graph.tokenTypeIds]: i64Tensor(batch.typeIds, [batch.batch, batch.seq]) } : {}),
    };
    const byParam = new Map(loras.map((l) => [l.param, l]));
    for (const inp of this.graph.loraInputs) {
      const l = byParam.get(inp.param);
      if (!l) throw new Error(`no values for LoRA parameter ${inp.param}`);
      feeds[inp.A] = f32Tensor(l.A, [inp.r, inp.inFeatures]);
      feeds[inp.B] = f32Tensor(l.B, [inp.outFeatures, inp.r]);
    }
    const out = await this.session.run(feeds);
    const result: RunResult = {};
    if (this.graph.logits) result.logits = out[this.graph.logits]!.data as Float32Array;
    if (this.graph.loraNorms) result.loraNorms = out[this.graph.loraNorms]!.data as Float32Array;
    return result;
  }

  /** Releases the session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}
