/**
 * The training graph: the decoder forward pass (models/llama.ts) with the causal-LM cross-entropy on top and,
 * derived by the autodiff, the gradient of that loss with respect to every LoRA parameter input. One ONNX model,
 * one session; the LoRA values, the batch and the dropout masks are its inputs, the loss and the gradients its
 * outputs. Base weights stay frozen initializers that no gradient reaches.
 *
 * The loss is Σ over the target positions (b, t) of (1/N)·(−log p(token t+1 | tokens ≤ t)), N being the number of
 * target positions of the whole (accumulated) step — so summing the losses of the micro-batches of a step gives
 * the mean over all its target tokens, and their gradients add up to the gradient of that mean. Logits are
 * computed at target positions only, so prompt tokens and padding cost nothing in the LM head.
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { buildBackward } from "../onnx/autodiff";
import { buildForward } from "../models";
import { HfModel } from "../models/hfModel";
import { Batch } from "../data/batch";
import { createSession, DeviceChoice, ExecutionProvider, f32Tensor, i64Tensor, ort } from "./session";
import type { Logger } from "../util/progress";
import { ForwardGraph, LoraSlot } from "../models/forward";
import type { LoraModule } from "../adapter/loraModule";
import type { QuantizedWeights } from "../quant/quantLinear";

/** One trained head tensor, by its base-model weight name (e.g. `classifier.out_proj.weight`). */
export interface HeadParam {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** A LoRA parameter pair (one per distinct `param` name; shared by every module bound to it). */
export interface LoraParam {
  name: string;
  r: number;
  inFeatures: number;
  outFeatures: number;
  /** [r, in], row-major. */
  A: Float32Array;
  /** [out, r], row-major. */
  B: Float32Array;
}

/** Gradients of one parameter pair. */
export interface ParamGrads {
  A: Float32Array;
  B: Float32Array;
}

/** Names inside a built training (or loss-only) graph. */
export interface TrainGraph {
  forward: ForwardGraph;
  /** int64 [rows]: the flat [batch*seq] positions whose next token is a target. Only these rows get logits. */
  logitRows: string;
  /** int64 [rows]: the next token at each of those positions. */
  labels: string;
  /** float [rows]: 1/N for the step's N targets. */
  lossWeights: string;
  loss: string;
  /** Output names of the gradients, per param (absent for a loss-only graph, or a param the loss does not reach). */
  grads: Map<string, { A: string | null; B: string | null }>;
  /** The loss is the cross-entropy of each sequence's class label (rows are sequences), not next-token prediction. */
  classification: boolean;
  /** Output names of the classification head's gradients, by head weight name (when the head is trained). */
  headGrads: Map<string, string>;
  /** A sequence classifier's [batch, num_labels] logits, when asked for (evaluation scores accuracy from them). */
  classLogits?: string;
}

/** Builds the loss (and, when `gradients`, the LoRA gradients) into `g` and marks the outputs. */
export function buildTrainGraph(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: { gradients: boolean; dropout: boolean; numLayers?: number; trainHead?: boolean; classLogits?: boolean; quantized?: QuantizedWeights; recomputeUp?: boolean }): TrainGraph {
  const o = new Ops(g);
  // The LM head (the largest single product) runs only at target positions: prompt tokens and padding get no logits.
  const logitRows = g.input("logit_rows", "int64", ["rows"]);
  // A sequence classifier has one row of class logits per sequence; logit_rows then picks sequences.
  const classification = model.config.head === "seq-cls";
  const headInputs = classification && (opts.trainHead ?? false);
  const forward = buildForward(g, model, slots, { logits: true, loraNorms: false, loraDropout: opts.dropout, numLayers: opts.numLayers, headInputs, quantized: opts.quantized, recomputeUp: opts.recomputeUp, ...(classification ? {} : { logitRows }) });
  const labels = g.input("labels", "int64", ["rows"]);
  const lossWeights = g.input("loss_weights", "float32", ["rows"]);
  const z = classification ? o.gather(forward.logits!, logitRows) : forward.logits!;
  const ce = weightedCrossEntropy(g, z, labels, lossWeights);
  const loss = ce.loss;
  g.output(loss);
  // The class logits come out as well when asked, so one run gives both the loss and the predicted classes.
  const classLogits = classification && opts.classLogits ? forward.logits! : undefined;
  if (classLogits) g.output(classLogits);
  const grads = new Map<string, { A: string | null; B: string | null }>();
  const headGrads = new Map<string, string>();
  if (opts.gradients) {
    const wrt = [...forward.loraInputs.flatMap((l) => [l.A, l.B]), ...forward.headInputs.map((h) => h.input)];
    const d = buildBackward(g, z, wrt, ce.gradient());
    // A value can be a graph output only once, so a gradient that already is an output gets its own name.
    const output = (v: string | null | undefined): string | null => {
      if (!v) return null;
      const name = g.outputs.includes(v) ? o.identity(v) : v;
      g.output(name);
      return name;
    };
    for (const l of forward.loraInputs) grads.set(l.param, { A: output(d.get(l.A)), B: output(d.get(l.B)) });
    for (const h of forward.headInputs) {
      const name = output(d.get(h.input));
      if (name) headGrads.set(h.name, name);
    }
  }
  return { forward, logitRows, labels, lossWeights, loss, grads, classification, headGrads, ...(classLogits ? { classLogits } : {}) };
}

/**
 * The weighted cross-entropy Σ w·(logsumexp(z) − z[label]) of logits z [rows, classes] (labels int64 [rows],
 * weights float [rows]), and on demand its gradient with respect to z, w·(softmax(z) − onehot(label)), built by
 * hand: the generic rules (LogSoftmax, GatherElements) would keep the log-probabilities, a scattered one-hot and the
 * softmax alive at once, where this is one [rows, classes] tensor with the one-hot added into it.
 */
export function weightedCrossEntropy(g: GraphBuilder, z: string, labels: string, weights: string): { loss: string; gradient: () => string } {
  const o = new Ops(g);
  const col = [g.shape(z)[0]!, 1];
  const labelCol = o.unsqueeze(labels, [1]);
  const weightCol = o.unsqueeze(weights, [1]);
  const lse = g.node("ReduceLogSumExp", [z, g.i64([-1])], [{ dtype: "float32", shape: col }], { keepdims: 1 })[0]!;
  const picked = g.node("GatherElements", [z, labelCol], [{ dtype: "float32", shape: col }], { axis: 1 })[0]!;
  const loss = o.reduceSum(o.mul(o.sub(lse, picked), weightCol), [0, 1], false);
  const gradient = () => {
    const probsW = o.mul(o.exp(o.sub(z, lse)), weightCol);
    return g.node("ScatterElements", [probsW, labelCol, o.neg(weightCol)], [{ dtype: "float32", shape: g.shape(z) }], { axis: 1, reduction: "add" })[0]!;
  };
  return { loss, gradient };
}

/** The loss's target positions of a batch (flat [batch*seq] indices), their next tokens, and weights 1/denominator. */
export function lossTargets(batch: Batch, denominator: number, classification = false): { rows: number[]; labels: number[]; weights: Float32Array } {
  const { batch: B, seq: T } = batch;
  const rows: number[] = [];
  const labels: number[] = [];
  if (classification) {
    batch.examples.forEach((e, b) => {
      if (e.label === undefined) throw new Error(`example ${e.example} has no class label`);
      rows.push(b);
      labels.push(e.label);
    });
    return { rows, labels, weights: new Float32Array(rows.length).fill(1 / denominator) };
  }
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      // Position t predicts token t+1; it counts when token t+1 is a target (never padding: makeBatch zeroes those).
      if (batch.targets[b * T + t + 1]) {
        rows.push(b * T + t);
        labels.push(batch.ids[b * T + t + 1]!);
      }
    }
  }
  return { rows, labels, weights: new Float32Array(rows.length).fill(1 / denominator) };
}

/** Number of loss targets in a batch (tokens after the first that are marked as targets). */
export function countTargets(batch: Batch, classification = false): number {
  if (classification) return batch.batch;
  let n = 0;
  for (let b = 0; b < batch.batch; b++) for (let t = 1; t < batch.seq; t++) n += batch.targets[b * batch.seq + t] ?? 0;
  return n;
}

/** Options of a loss session. */
export interface LossSessionOptions {
  gradients: boolean;
  dropout: boolean;
  /** Build only the first N decoder layers (benchmarks). */
  numLayers?: number;
  device: DeviceChoice;
  threads?: number;
  /**
   * See SessionOptions.prepack. Default: on for a loss-only graph, off for a training graph — there each frozen
   * weight feeds two products (x·Wᵀ forward, dY·W backward), MLAS would pack it once per orientation, and the
   * packed copies plus the memory-mapped original would hold the base weights up to three times over.
   */
  prepack?: boolean;
  /** Extra ORT session configuration entries. */
  config?: Record<string, string>;
  /** A sequence classifier's head is trained: its weights are inputs (values passed to `run`) with gradients. */
  trainHead?: boolean;
  /** A sequence classifier also returns its class logits (LossResult.logits). */
  classLogits?: boolean;
  /** Quantized projection weights (models/quantizedWeights.ts); a loss-only graph only: no gradient rule crosses them. */
  quantized?: QuantizedWeights;
  /** Recompute the MLP up projections in the backward pass (ForwardOptions.recomputeUp). */
  recomputeUp?: boolean;
  log?: Logger;
}

/** The result of one micro-batch. */
export interface LossResult {
  /** This micro-batch's share of the step's mean loss. */
  loss: number;
  /** Per param (when the session computes gradients). */
  grads?: Map<string, ParamGrads>;
  /** Per head tensor (when the head is trained). */
  headGrads?: Map<string, Float32Array>;
  /** A sequence classifier's [batch, num_labels] logits (with `classLogits`). */
  logits?: Float32Array;
}

/** A compiled training (or loss-only) graph for one model and one LoRA layout. */
export class LossSession {
  private constructor(
    readonly session: Ort.InferenceSession,
    readonly device: ExecutionProvider,
    readonly graph: TrainGraph,
  ) {}

  /** Builds the graph and creates the session. */
  static async create(model: HfModel, slots: LoraSlot[], opts: LossSessionOptions): Promise<LossSession> {
    const g = new GraphBuilder();
    const graph = buildTrainGraph(g, model, slots, { gradients: opts.gradients, dropout: opts.dropout, numLayers: opts.numLayers, trainHead: opts.trainHead, classLogits: opts.classLogits, quantized: opts.quantized, recomputeUp: opts.recomputeUp });
    const { session, device } = await createSession(g.toBytes(), {
      device: opts.device, shardFiles: [...model.shards.map((s) => s.file), ...(opts.quantized?.files ?? [])], threads: opts.threads, log: opts.log,
      prepack: opts.prepack ?? !opts.gradients, backward: opts.gradients, config: opts.config,
    });
    return new LossSession(session, device, graph);
  }

  /**
   * Runs one micro-batch. `denominator` is the number of target tokens of the whole step. `dropout` maps each
   * dropout input name to its [batch*seq, in] mask; without it (or for a graph without dropout) no dropout applies.
   * `head` holds the classification head's values when the session trains it.
   */
  async run(batch: Batch, denominator: number, params: Map<string, LoraParam>, dropout?: Map<string, Float32Array>, head?: Map<string, HeadParam>): Promise<LossResult> {
    const rt = ort();
    const { rows, labels, weights } = lossTargets(batch, denominator, this.graph.classification);
    const dims = [batch.batch, batch.seq];
    const feeds: Record<string, Ort.Tensor> = {
      [this.graph.forward.inputIds]: i64Tensor(batch.ids, dims),
      [this.graph.forward.attentionMask]: i64Tensor(batch.mask, dims),
      ...(this.graph.forward.tokenTypeIds ? { [this.graph.forward.tokenTypeIds]: i64Tensor(batch.typeIds, dims) } : {}),
      [this.graph.logitRows]: i64Tensor(rows, [rows.length]),
      [this.graph.labels]: i64Tensor(labels, [rows.length]),
      [this.graph.lossWeights]: new rt.Tensor("float32", weights, [rows.length]),
    };
    for (const inp of this.graph.forward.loraInputs) {
      const p = params.get(inp.param);
      if (!p) throw new Error(`no values for LoRA parameter ${inp.param}`);
      feeds[inp.A] = f32Tensor(p.A, [inp.r, inp.inFeatures]);
      feeds[inp.B] = f32Tensor(p.B, [inp.outFeatures, inp.r]);
    }
    for (const h of this.graph.forward.headInputs) {
      const t = head?.get(h.name);
      if (!t) throw new Error(`no values for the head tensor ${h.name}`);
      feeds[h.input] = f32Tensor(t.data, h.shape);
    }
    const n = batch.batch * batch.seq;
    for (const d of this.graph.forward.dropoutInputs) {
      const mask = dropout?.get(d.name) ?? new Float32Array(n * d.inFeatures).fill(1);
      feeds[d.name] = f32Tensor(mask, [n, d.inFeatures]);
    }
    const out = await this.session.run(feeds);
    const loss = (out[this.graph.loss]!.data as Float32Array)[0]!;
    const logits = this.graph.classLogits ? { logits: out[this.graph.classLogits]!.data as Float32Array } : {};
    if (this.graph.grads.size === 0 && this.graph.headGrads.size === 0) return { loss, ...logits };
    const grads = new Map<string, ParamGrads>();
    for (const inp of this.graph.forward.loraInputs) {
      const names = this.graph.grads.get(inp.param)!;
      const read = (name: string | null, size: number) => (name ? (out[name]!.data as Float32Array) : new Float32Array(size));
      grads.set(inp.param, { A: read(names.A, inp.r * inp.inFeatures), B: read(names.B, inp.outFeatures * inp.r) });
    }
    const headGrads = new Map<string, Float32Array>();
    for (const h of this.graph.forward.headInputs) {
      const name = this.graph.headGrads.get(h.name);
      headGrads.set(h.name, name ? (out[name]!.data as Float32Array) : new Float32Array(h.shape.reduce((a, b) => a * b, 1)));
    }
    return { loss, grads, ...(headGrads.size ? { headGrads } : {}), ...logits };
  }

  /** Loss targets in a batch: tokens to predict, or (for a classifier) its sequences. */
  countTargets(batch: Batch): number {
    return countTargets(batch, this.graph.classification);
  }

  /** Releases the session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The distinct parameter pairs of a list of LoRA modules (the first module's values for each param). */
export function paramsOf(loras: LoraModule[]): Map<string, LoraParam> {
  const params = new Map<string, LoraParam>();
  for (const l of loras) {
    if (!params.has(l.param)) params.set(l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B });
  }
  return params;
}
