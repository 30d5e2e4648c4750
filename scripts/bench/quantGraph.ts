/**
 * The profile graph (layers up to the last LoRA layer, LoRA norm taps, no LM head) with its projections in a
 * chosen precision, for benchmarking quantized whole passes before the engine's models/ build them:
 * - `fp32`: Gemm(transB=1) over the stored weights, as the engine runs today;
 * - `nbits`: com.microsoft MatMulNBits over weights from the quantized-weight cache (external data);
 * - `dq8`: com.microsoft DynamicQuantizeMatMul over int8 weights [K, N], one symmetric scale per output column
 *   (graph constants), activations quantized per tensor at run time;
 * - `rq8`: the same weights through the standard MatMulInteger, activations quantized per row (token) by plain ops
 *   (scale = row max / 127, codes shifted by 128 into uint8 for the u8×s8 VNNI kernel).
 * LoRA branches, norms, attention and the taps stay fp32 in every variant. The decoder layer repeats
 * models/llama.ts's buildDecoderLayer with the projection made pluggable.
 */
import { GraphBuilder } from "../../extension/core/onnx/builder";
import { Ops } from "../../extension/core/onnx/ops";
import { WeightBinder, shardLocation } from "../../extension/core/models/weights";
import { HfModel } from "../../extension/core/models/hfModel";
import { buildLayerContext, LayerContext } from "../../extension/core/models/llama";
import { pruneDeadNodes } from "../../extension/core/onnx/deadNodes";
import { readSafetensorsIndex, readTensorF32 } from "../../extension/core/io/safetensors";
import { QuantSpec } from "../../extension/core/quant/blockQuant";
import { ensureQuantized, QuantizedTensorRef } from "../../extension/core/quant/quantCache";
import { AccuracyLevel, matMulNBits, quantizedExternal } from "../../extension/core/quant/quantLinear";
import { moduleParent, DECODER_MODULES } from "../../extension/core/models/arch";
import { LoraSlot } from "../../extension/core/models/forward";

/** How the projections run. */
export type Precision = { kind: "fp32" } | { kind: "nbits"; spec: QuantSpec; accuracyLevel: AccuracyLevel } | { kind: "dq8" } | { kind: "rq8" };

/** A built graph and the files its external data lives in, in `shardLocation` order. */
export interface QuantProfileGraph {
  bytes: Uint8Array;
  shardFiles: string[];
  loraNorms: string;
  /** The layer of each tap, in output order. */
  tapLayers: number[];
  inputIds: string;
  attentionMask: string;
  loraInputs: { param: string; A: string; B: string; r: number; inFeatures: number; outFeatures: number }[];
  /** Seconds spent quantizing (0 when every weight came from the cache). */
  quantSeconds: number;
  cacheHits: number;
  cacheMisses: number;
}

/** Parses "fp32", "int4[-blk32][-acc4][-zp]", "int8[-blk128][-acc4][-zp]", "dq8" or "rq8". */
export function parsePrecision(s: string): Precision {
  if (s === "fp32" || s === "dq8" || s === "rq8") return { kind: s };
  const m = /^int([48])(?:-blk(\d+))?(?:-acc([014]))?(-zp)?$/.exec(s);
  if (!m) throw new Error(`precision ${s}: expected fp32, dq8 or int4|int8[-blkN][-accL][-zp]`);
  return {
    kind: "nbits", accuracyLevel: Number(m[3] ?? 4) as AccuracyLevel,
    spec: { bits: Number(m[1]) as 4 | 8, blockSize: Number(m[2] ?? (m[1] === "4" ? 32 : 128)), symmetric: !m[4] },
  };
}

/** Builds the profile graph of `numLayers` layers with the projections in `precision`. */
export async function buildQuantProfile(model: HfModel, slots: LoraSlot[], numLayers: number, precision: Precision, cacheDir: string): Promise<QuantProfileGraph> {
  const g = new GraphBuilder();
  const w = new WeightBinder(g, model);
  const cfg = model.config;
  const inputIds = g.input("input_ids", "int64", ["batch", "seq"]);
  const attentionMask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const ctx = buildLayerContext(g, cfg, attentionMask, slots, { logits: false, loraNorms: true, numLayers });
  const loraInputs = ctx.lora.loraInputs;
  const o = ctx.o;
  const shardFiles = model.shards.map((s) => s.file);
  const names = (layer: number) => DECODER_MODULES.map((m) => `model.layers.${layer}.${moduleParent(m)}.${m}.weight`);
  const wanted = Array.from({ length: numLayers }, (_, i) => names(i)).flat();

  // Quantized weights: one cache file per source shard, made visible to the session after the model's shards.
  const refs = new Map<string, { ref: QuantizedTensorRef; location: string }>();
  let quantSeconds = 0, cacheHits = 0, cacheMisses = 0;
  if (precision.kind === "nbits") {
    const byShard = new Map<string, string[]>();
    for (const name of wanted) {
      const file = model.weights.get(name)!.index.file;
      byShard.set(file, [...(byShard.get(file) ?? []), name]);
    }
    for (const [file, tensors] of byShard) {
      const t0 = Date.now();
      const r = await ensureQuantized({ file, tensors }, precision.spec, { cacheDir });
      if (r.hit) cacheHits++; else { cacheMisses++; quantSeconds += (Date.now() - t0) / 1000; }
      const location = shardLocation(shardFiles.length);
      shardFiles.push(r.file);
      for (const [name, ref] of r.tensors) refs.set(name, { ref, location });
    }
  }
  const linear = (layer: number) => (x: string, module: string, inF: number, outF: number): string => {
    const name = `model.layers.${layer}.${moduleParent(module)}.${module}.weight`;
    if (precision.kind === "nbits") {
      const { ref, location } = refs.get(name)!;
      return matMulNBits(g, x, quantizedExternal(g, ref, location), precision.accuracyLevel);
    }
    if (precision.kind === "dq8" || precision.kind === "rq8") return int8Linear(g, model, x, name, inF, outF, precision.kind);
    return o.gemm(x, w.weight(name, [outF, inF]), { transB: true });
  };

  let h = o.reshape(o.gather(w.weight("model.embed_tokens.weight", [cfg.vocabSize, cfg.hiddenSize]), inputIds), [-1, cfg.hiddenSize], ["batch*seq", cfg.hiddenSize]);
  for (let i = 0; i < numLayers; i++) {
    h = decoderLayer(g, ctx, i, h, (suffix, shape) => w.weight(`model.layers.${i}.${suffix}`, shape), linear(i));
  }
  const loraNorms = ctx.lora.stackedTaps(ctx.bsShape)!;
  g.output(loraNorms);
  pruneDeadNodes(g);
  return { bytes: g.toBytes(), shardFiles, loraNorms, tapLayers: ctx.lora.tapOrder.map((t) => t.layer), inputIds, attentionMask, loraInputs, quantSeconds, cacheHits, cacheMisses };
}

/** The weight as int8 [K, N] with a symmetric scale per output column, through DynamicQuantizeMatMul or MatMulInteger. */
function int8Linear(g: GraphBuilder, model: HfModel, x: string, name: string, K: number, N: number, kind: "dq8" | "rq8"): string {
  const ref = model.weights.get(name)!;
  const w = readTensorF32(readSafetensorsIndex(ref.index.file), name).data;
  const q = new Int8Array(K * N);
  const scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(w[n * K + k]!));
    const s = Math.fround(m / 127 || 1);
    scale[n] = s;
    const inv = 1 / s;
    for (let k = 0; k < K; k++) q[k * N + n] = Math.round(w[n * K + k]! * inv);
  }
  const M = g.shape(x)[0]!;
  const b = g.constant({ dtype: "int8", dims: [K, N], data: q }, "q8_b");
  const s = g.constant({ dtype: "float32", dims: [N], data: scale }, "q8_s");
  if (kind === "dq8") return g.node("DynamicQuantizeMatMul", [x, b, s], [{ dtype: "float32", shape: [M, N] }], {}, "com.microsoft")[0]!;
  const o = new Ops(g);
  const absMax = g.node("ReduceMax", [g.node("Abs", [x], [g.info(x)])[0]!, g.i64([1])], [{ dtype: "float32", shape: [M, 1] }], { keepdims: 1 })[0]!;
  const rowScale = o.div(o.add(absMax, g.f32(1e-30)), g.f32(127));
  const xq = o.cast(o.add(g.node("Round", [o.div(x, rowScale)], [g.info(x)])[0]!, g.f32(128)), "uint8");
  const zp = g.constant({ dtype: "uint8", dims: [], data: Uint8Array.of(128) }, "q8_zp");
  const acc = g.node("MatMulInteger", [xq, b, zp], [{ dtype: "int32", shape: [M, N] }])[0]!;
  return o.mul(o.mul(o.cast(acc, "float32"), rowScale), s);
}

type Linear = (x: string, module: string, inF: number, outF: number) => string;

/** models/llama.ts's decoder layer (no biases: the bench model is a Llama) with a pluggable projection. */
function decoderLayer(g: GraphBuilder, ctx: LayerContext, layer: number, h: string, weight: (suffix: string, shape: number[]) => string, base: Linear): string {
  const { cfg, o } = ctx;
  const H = cfg.hiddenSize, D = cfg.headDim, nH = cfg.numHeads, nKV = cfg.numKvHeads, grp = nH / nKV;
  const N = "batch*seq";
  const reshapeDyn = (x: string, tail: number[], target: (number | string)[]) => {
    const shape = g.node("Concat", [ctx.bsShape, g.i64(tail)], [{ dtype: "int64", shape: [2 + tail.length] }], { axis: 0 })[0]!;
    return g.node("Reshape", [x, shape], [{ dtype: "float32", shape: target }])[0]!;
  };
  const rmsNorm = (x: string, wt: string) => {
    const inv = o.reciprocal(o.sqrt(o.add(o.reduceMean(o.mul(x, x), [-1]), g.f32(cfg.rmsNormEps))));
    return o.mul(o.mul(x, inv), wt);
  };
  const rope = (x: string) => {
    const rot = o.concat([o.neg(o.slice(x, -1, D / 2, D)), o.slice(x, -1, 0, D / 2)], -1);
    return o.add(o.mul(x, ctx.cos), o.mul(rot, ctx.sin));
  };
  const linear = (x: string, module: string, inF: number, outF: number) => {
    return ctx.lora.add(x, base(x, module, inF, outF), layer, module, inF);
  };
  const x = rmsNorm(h, weight("input_layernorm.weight", [H]));
  const q = linear(x, "q_proj", H, nH * D);
  const k = linear(x, "k_proj", H, nKV * D);
  const v = linear(x, "v_proj", H, nKV * D);
  const q5 = rope(reshapeDyn(o.mul(q, g.f32(1 / Math.sqrt(D))), [nKV, grp, D], ["batch", "seq", nKV, grp, D]));
  const k5 = rope(reshapeDyn(k, [nKV, 1, D], ["batch", "seq", nKV, 1, D]));
  const v5 = reshapeDyn(v, [nKV, 1, D], ["batch", "seq", nKV, 1, D]);
  const scores = o.add(o.matmul(o.transpose(q5, [0, 2, 3, 1, 4]), o.transpose(k5, [0, 2, 3, 4, 1])), ctx.attnBias);
  const attnCtx = o.matmul(o.softmax(scores, -1), o.transpose(v5, [0, 2, 3, 1, 4]));
  const attn = o.reshape(o.transpose(attnCtx, [0, 3, 1, 2, 4]), [-1, nH * D], [N, nH * D]);
  h = o.add(h, linear(attn, "o_proj", nH * D, H));
  const x2 = rmsNorm(h, weight("post_attention_layernorm.weight", [H]));
  const gate = linear(x2, "gate_proj", H, cfg.intermediateSize);
  const up = linear(x2, "up_proj", H, cfg.intermediateSize);
  const act = o.mul(o.mul(gate, o.sigmoid(gate)), up);
  return o.add(h, linear(act, "down_proj", cfg.intermediateSize, H));
}
