/**
 * The contract between the forward-graph builders (one per architecture) and what runs them: the LoRA slots a
 * graph is built for, the options that choose its outputs, and the names of the values it produced. The runner,
 * the profiler, the training graph and layer streaming all speak in these terms, whatever the architecture.
 */

/** The shape of one LoRA module as the graph sees it (no data). */
export interface LoraSlot {
  layer: number;
  module: string;
  param: string;
  r: number;
  scale: number;
  inFeatures: number;
  outFeatures: number;
}

import type { QuantizedWeights } from "../quant/quantLinear";

/** Which outputs to build. */
export interface ForwardOptions {
  logits: boolean;
  loraNorms: boolean;
  /** Stop after this many layers (profiling needs only up to the last LoRA layer). Default: all. */
  numLayers?: number;
  /** Training: feed a dropout mask input per LoRA module (values 0 or 1/(1-p)), applied to x before A. */
  loraDropout?: boolean;
  /** An int64 [rows] value: compute logits only for these rows of the [batch*seq] positions (the loss's targets). */
  logitRows?: string;
  /**
   * Decoder projections as MatMul with the weight transposed (folded at session creation) instead of Gemm(transB):
   * for execution providers whose MatMul kernels are faster than their Gemm (measured on WebGPU). Costs a transposed
   * copy of every projection weight; off by default.
   */
  linearAsMatMul?: boolean;
  /**
   * Training a sequence classifier: the classification head's weights (PEFT's modules_to_save) become float32
   * graph inputs (`headInputs`) instead of frozen initializers, so the loss can be differentiated with respect to them.
   */
  headInputs?: boolean;
  /**
   * Projection weights quantized for the run (quantizedWeights.ts): those it holds are multiplied by MatMulNBits
   * from their cache files; every other weight, the LoRA branches and the taps stay float32. Absent: fp32.
   */
  quantized?: QuantizedWeights;
  /**
   * Training, Llama family: a backward pass recomputes each layer's MLP up projection from its normalised input
   * instead of keeping it (onnx/recompute.ts): a quarter less activation memory for about 9 % more time per step
   * (measured on the TinyLlama shape at seq 512). trainLora turns it on when the memory budget asks for it.
   */
  recomputeUp?: boolean;
  /**
   * Llama family: build decoder layers [first, end) only, for a model run as consecutive segments
   * (runtime/segmentedRunner.ts). A segment with first > 0 starts from a `hidden_in` input [batch*seq, hidden]
   * instead of the token embeddings; every segment names its last hidden states `hiddenOut`.
   */
  segment?: { first: number; end: number };
}

/** One LoRA parameter pair fed as graph inputs. */
export interface LoraInput { param: string; A: string; B: string; r: number; inFeatures: number; outFeatures: number }

/** Names of the values a forward build produced. */
export interface ForwardGraph {
  /** The int64 [batch, seq] token ids; "" for a segment that starts from hidden states (`hiddenIn`). */
  inputIds: string;
  /** With `segment`: the float32 [batch*seq, hidden] input of a segment after the first, and its last hidden states. */
  hiddenIn?: string;
  hiddenOut?: string;
  attentionMask: string;
  /** int64 [batch, seq] token type (segment) ids, for models that take them (BERT). */
  tokenTypeIds?: string;
  /** [batch, seq, vocab] when requested; [rows, vocab] with `logitRows`. */
  logits?: string;
  /** [n_taps, batch, seq] squared LoRA output norms, taps in `tapOrder`. Padding positions are zero. */
  loraNorms?: string;
  tapOrder: { layer: number; module: string }[];
  /** LoRA parameter inputs, one per distinct param. */
  loraInputs: LoraInput[];
  /** Dropout mask inputs ([batch*seq, in]) per tap, when loraDropout. */
  dropoutInputs: { layer: number; module: string; name: string; inFeatures: number }[];
  /** The classification head's weight inputs (with `headInputs`): base-model weight name, input name, shape. */
  headInputs: HeadInput[];
}

/** A head weight fed as a graph input. */
export interface HeadInput { name: string; input: string; shape: number[] }

/** Symbolic name of the flattened token axis. */
export const TOKENS = "batch*seq";
