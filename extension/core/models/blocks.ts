/**
 * Building blocks shared by the GPT-2 and encoder graphs: a linear layer with its LoRA (loraLinear.ts), LayerNorm,
 * the two GELUs and multi-head attention over 2-D [batch*seq, hidden] states. They follow the contract of
 * forward.ts, as models/llama.ts does, so the profiler, the runner and the training graph treat every architecture
 * alike.
 */
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { WeightBinder } from "./weights";
import type { HfModel } from "./hfModel";
import { TOKENS, type ForwardGraph, type ForwardOptions, type HeadInput, type LoraSlot } from "./forward";
import { LoraLinears, projection } from "./loraLinear";

/** Shared state of one forward build: inputs, LoRA parameters, taps. */
export class ForwardBlocks {
  readonly o: Ops;
  readonly w: WeightBinder;
  readonly inputIds: string;
  readonly attentionMask: string;
  /** int64 [2]: the runtime [batch, seq]. */
  readonly bsShape: string;
  /** float [batch*seq]: 1 at real tokens, 0 at padding. */
  readonly maskF: string;
  readonly headInputs: HeadInput[] = [];
  /** The LoRA inputs, slots and taps of this build. */
  readonly lora: LoraLinears;

  constructor(readonly g: GraphBuilder, model: HfModel, slots: LoraSlot[], readonly opts: ForwardOptions) {
    this.o = new Ops(g);
    this.w = new WeightBinder(g, model, opts.quantized);
    this.inputIds = g.input("input_ids", "int64", ["batch", "seq"]);
    this.attentionMask = g.input("attention_mask", "int64", ["batch", "seq"]);
    this.bsShape = g.node("Shape", [this.inputIds], [{ dtype: "int64", shape: [2] }])[0]!;
    this.maskF = this.o.reshape(this.o.cast(this.attentionMask, "float32"), [-1], [TOKENS]);
    this.lora = new LoraLinears(g, this.o, slots, opts, this.maskF);
  }

  /** Reshapes a [batch*seq, …] value to [batch, seq, ...tail] using the runtime batch and seq. */
  unflatten(x: string, tail: number[]): string {
    const shape = this.g.node("Concat", [this.bsShape, this.g.i64(tail)], [{ dtype: "int64", shape: [2 + tail.length] }], { axis: 0 })[0]!;
    return this.g.node("Reshape", [x, shape], [{ dtype: "float32", shape: ["batch", "seq", ...tail] }])[0]!;
  }

  /** int64 [seq]: 0, 1, …, seq-1. */
  arange(): string {
    const g = this.g;
    const seqLen = g.node("Gather", [this.bsShape, g.i64([1])], [{ dtype: "int64", shape: [1] }], { axis: 0 })[0]!;
    const seqScalar = g.node("Squeeze", [seqLen, g.i64([0])], [{ dtype: "int64", shape: [] }])[0]!;
    const zero = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(0n) });
    const one = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(1n) });
    return g.node("Range", [zero, seqScalar, one], [{ dtype: "int64", shape: ["seq"] }])[0]!;
  }

  /** int64 [batch]: the flat row of each sequence's first token (b · seq). */
  firstTokenRows(): string {
    const g = this.g;
    const dim = (i: number) => g.node("Squeeze", [g.node("Gather", [this.bsShape, g.i64([i])], [{ dtype: "int64", shape: [1] }], { axis: 0 })[0]!, g.i64([0])], [{ dtype: "int64", shape: [] }])[0]!;
    const zero = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(0n) });
    const one = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(1n) });
    const rows = g.node("Range", [zero, dim(0), one], [{ dtype: "int64", shape: ["batch"] }])[0]!;
    return g.node("Mul", [rows, dim(1)], [{ dtype: "int64", shape: ["batch"] }])[0]!;
  }

  /**
   * A linear layer over [batch*seq, in] plus its LoRA when one is slotted there. `conv1d`: the stored weight is
   * [in, out] (GPT-2's Conv1D), so the Gemm reads it without transposing; LoRA A/B keep PEFT's [r, in]/[out, r].
   */
  linear(x: string, layer: number, module: string, weightPrefix: string, inF: number, outF: number, conv1d = false): string {
    const wt = this.w.projectionWeight(`${weightPrefix}.weight`, conv1d ? [inF, outF] : [outF, inF]);
    const y = projection(this.o, x, wt, this.w.weight(`${weightPrefix}.bias`, [outF]), { conv1d });
    return this.lora.add(x, y, layer, module, inF);
  }

  /** LayerNorm over the last axis with weight and bias `${prefix}.weight/.bias` (biased variance, as torch). */
  layerNorm(x: string, prefix: string, H: number, eps: number): string {
    const o = this.o;
    // Original BERT checkpoints name LayerNorm's parameters gamma and beta (transformers renames them on load).
    const [wName, bName] = !this.w.has(`${prefix}.weight`) && this.w.has(`${prefix}.gamma`) ? ["gamma", "beta"] : ["weight", "bias"];
    const weight = this.w.weight(`${prefix}.${wName}`, [H]), bias = this.w.weight(`${prefix}.${bName}`, [H]);
    const start = this.g.nodes.length;
    const xc = o.sub(x, o.reduceMean(x, [-1]));
    const inv = o.reciprocal(o.sqrt(o.add(o.reduceMean(o.mul(xc, xc), [-1]), this.g.f32(eps))));
    const y = o.add(o.mul(o.mul(xc, inv), weight), bias);
    // A backward pass recomputes the centred and normalised rows from x instead of keeping them (onnx/recompute.ts).
    this.g.recomputeSince(start);
    return y;
  }

  /** GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
  geluTanh(x: string): string {
    const o = this.o, g = this.g;
    const start = g.nodes.length;
    const inner = o.mul(o.add(x, o.mul(g.f32(0.044715), o.mul(x, o.mul(x, x)))), g.f32(Math.sqrt(2 / Math.PI)));
    const y = o.mul(o.mul(x, g.f32(0.5)), o.add(o.tanh(inner), g.f32(1)));
    // Its [tokens, intermediate] intermediates are recomputed from x in a backward pass, not kept.
    g.recomputeSince(start);
    return y;
  }

  /** BERT's exact GELU: 0.5·x·(1 + erf(x/√2)). */
  geluErf(x: string): string {
    const o = this.o, g = this.g;
    const start = g.nodes.length;
    const y = o.mul(o.mul(x, g.f32(0.5)), o.add(o.erf(o.mul(x, g.f32(Math.SQRT1_2))), g.f32(1)));
    g.recomputeSince(start);
    return y;
  }

  /**
   * Multi-head attention over [batch*seq, nH·D] q/k/v with an additive bias broadcastable to
   * [batch, nH, seq, seq]; returns the context as [batch*seq, nH·D].
   */
  attention(q: string, k: string, v: string, nH: number, D: number, bias: string): string {
    const o = this.o;
    const q4 = o.transpose(this.unflatten(o.mul(q, this.g.f32(1 / Math.sqrt(D))), [nH, D]), [0, 2, 1, 3]);
    const k4 = o.transpose(this.unflatten(k, [nH, D]), [0, 2, 3, 1]);
    const v4 = o.transpose(this.unflatten(v, [nH, D]), [0, 2, 1, 3]);
    // The [seq, seq] scores and probabilities of every head are recomputed from q and k in a backward pass.
    const start = this.g.nodes.length;
    const probs = o.softmax(o.add(o.matmul(q4, k4), bias), -1);
    this.g.recomputeSince(start);
    const ctx = o.matmul(probs, v4);
    return o.reshape(o.transpose(ctx, [0, 2, 1, 3]), [-1, nH * D], [TOKENS, nH * D]);
  }

  /** Additive key-padding bias [batch, 1, 1, seq]: 0 at real keys, -1e9 at padding. */
  keyPaddingBias(): string {
    const o = this.o;
    return o.where(o.unsqueeze(o.cast(this.attentionMask, "bool"), [1, 2]), this.g.f32(0), this.g.f32(-1e9));
  }

  /** A classification-head weight: a graph input when the head is trained (`headInputs`), else the frozen weight. */
  headWeight(name: string, shape: number[]): string {
    if (!this.opts.headInputs) return this.w.weight(name, shape);
    const input = this.g.input(`head.${name}`, "float32", shape);
    this.headInputs.push({ name, input, shape });
    return input;
  }

  /** The finished graph description, with the taps stacked into [n_taps, batch, seq]. */
  finish(logits?: string): ForwardGraph {
    const { lora } = this;
    const out: ForwardGraph = {
      inputIds: this.inputIds, attentionMask: this.attentionMask, tapOrder: lora.tapOrder, loraInputs: lora.loraInputs,
      dropoutInputs: lora.dropoutInputs, headInputs: this.headInputs,
    };
    const stacked = lora.stackedTaps(this.bsShape);
    if (stacked) out.loraNorms = stacked;
    if (logits) out.logits = logits;
    return out;
  }
}
