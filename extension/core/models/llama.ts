/**
 * The Llama-family decoder (llama, mistral, qwen2) with LoRA, built as an ONNX graph from plain ops.
 *
 * Layout: hidden states are kept 2-D, [batch*seq, hidden], so every linear layer is one Gemm with transB=1 over the
 * stored [out, in] weight (no transposed copy). Attention reshapes to [batch, kv_heads, group, seq, head_dim] so
 * grouped-query attention broadcasts K and V instead of repeating them.
 *
 * LoRA parameters are graph inputs (loraLinear.ts), so one session serves any adapter of the same shape and training
 * can update them without rebuilding. Its config.json is parsed in llamaConfig.ts.
 */
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { WeightBinder } from "./weights";
import type { HfModel } from "./hfModel";
import type { ModelConfig } from "./config";
import { moduleParent } from "./arch";
import { TOKENS, type ForwardGraph, type ForwardOptions, type LoraSlot } from "./forward";
import { LoraLinears, projection, type ProjectionWeight } from "./loraLinear";

/** RoPE inverse frequencies as HF computes them, including linear and llama3 scaling. */
export function ropeInvFreq(cfg: ModelConfig): number[] {
  const d = cfg.headDim;
  const inv: number[] = [];
  for (let i = 0; i < d; i += 2) inv.push(1 / Math.pow(cfg.ropeTheta, i / d));
  const sc = cfg.ropeScaling;
  if (!sc) return inv;
  if (sc.type === "linear") return inv.map((f) => f / sc.factor);
  const lowWavelen = sc.originalMaxPositionEmbeddings / sc.lowFreqFactor;
  const highWavelen = sc.originalMaxPositionEmbeddings / sc.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / sc.factor;
    const smooth = (sc.originalMaxPositionEmbeddings / wavelen - sc.lowFreqFactor) / (sc.highFreqFactor - sc.lowFreqFactor);
    return (1 - smooth) * (f / sc.factor) + smooth * f;
  });
}

/** The per-batch values every decoder layer reads, built once per graph from the attention mask. */
export interface LayerContext {
  cfg: ModelConfig;
  o: Ops;
  /** [batch, seq] as a runtime int64 [2]. */
  bsShape: string;
  /** Token mask as float [batch*seq] (zeros at padding), for the norm taps. */
  maskF: string;
  /** [batch, 1, 1, seq, seq]: 0 where attention is allowed, -1e9 elsewhere. */
  attnBias: string;
  cos: string;
  sin: string;
  /** The LoRA inputs, slots and taps the layers fill. */
  lora: LoraLinears;
  opts: ForwardOptions;
}

/** Creates the LoRA parameter inputs (one pair per distinct param) and the shared per-batch values. */
export function buildLayerContext(g: GraphBuilder, cfg: ModelConfig, attentionMask: string, slots: LoraSlot[], opts: ForwardOptions): LayerContext {
  const o = new Ops(g);
  const D = cfg.headDim;
  const N = TOKENS;
  // Runtime sizes: [batch, seq] and seq alone (the mask has the ids' shape).
  const bsShape = g.node("Shape", [attentionMask], [{ dtype: "int64", shape: [2] }])[0]!;
  const seqLen = g.node("Gather", [bsShape, g.i64([1])], [{ dtype: "int64", shape: [1] }], { axis: 0 })[0]!;

  const maskF = o.reshape(o.cast(attentionMask, "float32"), [-1], [N]);
  const lora = new LoraLinears(g, o, slots, opts, maskF);

  // Attention bias [batch, 1, 1, seq, seq]: 0 where causal and the key is not padding, -1e9 elsewhere.
  const ss = g.node("Concat", [seqLen, seqLen], [{ dtype: "int64", shape: [2] }], { axis: 0 })[0]!;
  const ones = g.node("ConstantOfShape", [ss], [{ dtype: "float32", shape: ["seq", "seq"] }],
    { value: { tensor: { dtype: "float32", dims: [1], data: Float32Array.of(1) } } })[0]!;
  let causal = o.cast(g.node("Trilu", [ones], [{ dtype: "float32", shape: ["seq", "seq"] }], { upper: 0 })[0]!, "bool");
  if (cfg.slidingWindow !== undefined) {
    // Mistral's window, as transformers masks it: query i sees keys j with i − window < j ≤ i (Trilu keeps j − i ≥ k).
    const k = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(1 - cfg.slidingWindow)) });
    const band = o.cast(g.node("Trilu", [ones, k], [{ dtype: "float32", shape: ["seq", "seq"] }], { upper: 1 })[0]!, "bool");
    causal = g.node("And", [causal, band], [{ dtype: "bool", shape: ["seq", "seq"] }])[0]!;
  }
  const keyValid = o.unsqueeze(o.cast(attentionMask, "bool"), [1, 2, 3]);
  const allowed = g.node("And", [causal, keyValid], [{ dtype: "bool", shape: ["batch", 1, 1, "seq", "seq"] }])[0]!;
  const attnBias = o.where(allowed, g.f32(0), g.f32(-1e9));

  // Rotary tables [seq, 1, 1, head_dim].
  const zero = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(0n) });
  const oneI = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(1n) });
  const seqScalar = g.node("Squeeze", [seqLen, g.i64([0])], [{ dtype: "int64", shape: [] }])[0]!;
  const pos = o.cast(g.node("Range", [zero, seqScalar, oneI], [{ dtype: "int64", shape: ["seq"] }])[0]!, "float32");
  const freqs = o.mul(o.unsqueeze(pos, [1]), g.f32(ropeInvFreq(cfg), [1, D / 2]));
  const emb = o.concat([freqs, freqs], -1);
  const cos = o.reshape(g.node("Cos", [emb], [{ dtype: "float32", shape: ["seq", D] }])[0]!, [-1, 1, 1, D], ["seq", 1, 1, D]);
  const sin = o.reshape(g.node("Sin", [emb], [{ dtype: "float32", shape: ["seq", D] }])[0]!, [-1, 1, 1, D], ["seq", 1, 1, D]);
  return { cfg, o, bsShape, maskF, attnBias, cos, sin, lora, opts };
}

/** Reshapes a [batch*seq, …] value to [batch, seq, …tail] using the runtime batch and seq. */
function reshapeDyn(g: GraphBuilder, ctx: LayerContext, x: string, tail: number[], target: (number | string)[]): string {
  const shape = g.node("Concat", [ctx.bsShape, g.i64(tail)], [{ dtype: "int64", shape: [2 + tail.length] }], { axis: 0 })[0]!;
  return g.node("Reshape", [x, shape], [{ dtype: "float32", shape: target }])[0]!;
}

/** RMSNorm of the rows of `x` times `weight`. */
function rmsNorm(g: GraphBuilder, ctx: LayerContext, x: string, weight: string): string {
  const o = ctx.o;
  const start = g.nodes.length;
  const ms = o.reduceMean(o.mul(x, x), [-1]);
  const inv = o.reciprocal(o.sqrt(o.add(ms, g.f32(ctx.cfg.rmsNormEps))));
  const y = o.mul(o.mul(x, inv), weight);
  // A backward pass recomputes the normalised rows from x (which it keeps anyway) instead of keeping a second copy.
  g.recomputeSince(start);
  return y;
}

/**
 * Builds decoder layer `layer` on hidden states `h` [batch*seq, hidden] and returns the new hidden states.
 * `weight(suffix, shape)` gives the float32 value of a layer weight named without its `model.layers.<i>.` prefix
 * (initializers in the whole model, graph inputs in a streamed block); `projectionWeight` the same for the seven
 * projections, which may be quantized (default: `weight`). LoRA slots are looked up by `layer`.
 */
export function buildDecoderLayer(g: GraphBuilder, ctx: LayerContext, layer: number, h: string, weight: (suffix: string, shape: number[]) => string,
  projectionWeight: (suffix: string, shape: number[]) => ProjectionWeight = weight): string {
  const { cfg, o } = ctx;
  const H = cfg.hiddenSize, D = cfg.headDim, nH = cfg.numHeads, nKV = cfg.numKvHeads, grp = nH / nKV;
  const N = TOKENS;
  const rope = (x: string) => {
    const x1 = o.slice(x, -1, 0, D / 2);
    const x2 = o.slice(x, -1, D / 2, D);
    const rot = o.concat([o.neg(x2), x1], -1);
    return o.add(o.mul(x, ctx.cos), o.mul(rot, ctx.sin));
  };
  const linear = (x: string, module: string, inF: number, outF: number, bias: boolean) => {
    const prefix = `${moduleParent(module)}.${module}`;
    const y = projection(o, x, projectionWeight(`${prefix}.weight`, [outF, inF]), bias ? weight(`${prefix}.bias`, [outF]) : undefined, { asMatMul: ctx.opts.linearAsMatMul });
    return ctx.lora.add(x, y, layer, module, inF);
  };
  const x = rmsNorm(g, ctx, h, weight("input_layernorm.weight", [H]));
  const q = linear(x, "q_proj", H, nH * D, cfg.qkvBias);
  const k = linear(x, "k_proj", H, nKV * D, cfg.qkvBias);
  const v = linear(x, "v_proj", H, nKV * D, cfg.qkvBias);
  const q5 = rope(reshapeDyn(g, ctx, o.mul(q, g.f32(1 / Math.sqrt(D))), [nKV, grp, D], ["batch", "seq", nKV, grp, D]));
  const k5 = rope(reshapeDyn(g, ctx, k, [nKV, 1, D], ["batch", "seq", nKV, 1, D]));
  const v5 = reshapeDyn(g, ctx, v, [nKV, 1, D], ["batch", "seq", nKV, 1, D]);
  const qT = o.transpose(q5, [0, 2, 3, 1, 4]);
  const kT = o.transpose(k5, [0, 2, 3, 4, 1]);
  // The [seq, seq] scores and probabilities of every head are the largest activations; a backward pass recomputes
  // them from q and k (a small product beside the projections) instead of keeping them for every layer.
  const start = g.nodes.length;
  const probs = o.softmax(o.add(o.matmul(qT, kT), ctx.attnBias), -1);
  g.recomputeSince(start);
  const attnCtx = o.matmul(probs, o.transpose(v5, [0, 2, 3, 1, 4]));
  const attn = o.reshape(o.transpose(attnCtx, [0, 3, 1, 2, 4]), [-1, nH * D], [N, nH * D]);
  h = o.add(h, linear(attn, "o_proj", nH * D, H, cfg.oBias));
  const x2 = rmsNorm(g, ctx, h, weight("post_attention_layernorm.weight", [H]));
  const gate = linear(x2, "gate_proj", H, cfg.intermediateSize, cfg.mlpBias);
  const upStart = g.nodes.length;
  const up = linear(x2, "up_proj", H, cfg.intermediateSize, cfg.mlpBias);
  if (ctx.opts.recomputeUp) g.recomputeSince(upStart);
  // SiLU is recomputed from the gate in a backward pass: the gate and up products are all the MLP keeps.
  const siluStart = g.nodes.length;
  const silu = o.mul(gate, o.sigmoid(gate));
  g.recomputeSince(siluStart);
  const act = o.mul(silu, up);
  return o.add(h, linear(act, "down_proj", cfg.intermediateSize, H, cfg.mlpBias));
}

/** Builds the decoder forward pass into `g`. The caller marks outputs. */
export function buildLlamaForward(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: ForwardOptions): ForwardGraph {
  const cfg = model.config;
  const w = new WeightBinder(g, model, opts.quantized);
  const H = cfg.hiddenSize;
  const N = TOKENS;
  const first = opts.segment?.first ?? 0;
  const fromHidden = first > 0;
  const inputIds = fromHidden ? "" : g.input("input_ids", "int64", ["batch", "seq"]);
  const attentionMask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const ctx = buildLayerContext(g, cfg, attentionMask, slots, opts);
  const o = ctx.o;

  const hiddenIn = fromHidden ? g.input("hidden_in", "float32", [N, H]) : undefined;
  let h = hiddenIn ?? o.reshape(w.embeddingRows("model.embed_tokens.weight", [cfg.vocabSize, H], inputIds), [-1, H], [N, H]);
  const numLayers = opts.segment?.end ?? opts.numLayers ?? cfg.numLayers;
  for (let i = first; i < numLayers; i++) {
    const name = (suffix: string) => `model.layers.${i}.${suffix}`;
    h = buildDecoderLayer(g, ctx, i, h, (suffix, shape) => w.weight(name(suffix), shape), (suffix, shape) => w.projectionWeight(name(suffix), shape));
  }

  const { lora } = ctx;
  const out: ForwardGraph = {
    inputIds, attentionMask, tapOrder: lora.tapOrder, loraInputs: lora.loraInputs, dropoutInputs: lora.dropoutInputs, headInputs: [],
    ...(opts.segment ? { hiddenOut: h, ...(hiddenIn ? { hiddenIn } : {}) } : {}),
  };
  const stacked = lora.stackedTaps(ctx.bsShape);
  if (stacked) out.loraNorms = stacked;
  if (opts.logits) {
    const hn = rmsNorm(g, ctx, opts.logitRows ? o.gather(h, opts.logitRows) : h, w.weight("model.norm.weight", [H]));
    const head = cfg.tieWordEmbeddings || !w.has("lm_head.weight") ? w.weight("model.embed_tokens.weight", [cfg.vocabSize, H]) : w.weight("lm_head.weight", [cfg.vocabSize, H]);
    const logits2 = o.gemm(hn, head, { transB: true });
    out.logits = opts.logitRows ? logits2 : reshapeDyn(g, ctx, logits2, [cfg.vocabSize], ["batch", "seq", cfg.vocabSize]);
  }
  return out;
}
