/**
 * Quantized linear layers in a graph: onnxruntime's com.microsoft MatMulNBits node over a weight in the layout of
 * blockQuant.ts, either held in memory (tests, benchmarks) or as external data inside a quantized-weight cache file
 * (quantCache.ts), which the session hard-links beside the graph like a model shard.
 *
 * The node computes x · dequant(W)ᵀ for x [rows, K] and W [N, K]: the same product as the fp32 graph's
 * Gemm(x, W, transB=1), so it replaces that node one for one; LoRA branches and taps stay fp32 beside it.
 */
import { GraphBuilder } from "../onnx/builder";
import { BlockQuantized, QuantLayout, QuantSpec } from "./blockQuant";
import { QuantizedTensorRef } from "./quantCache";

/** The graph values of one quantized weight. */
export interface QuantizedWeightValues extends QuantLayout {
  spec: QuantSpec;
  data: string;
  scales: string;
  zeroPoints?: string;
}

/**
 * The quantized projection weights of one model, as a graph build binds them: by checkpoint weight name, the
 * cached tensor and the location its cache file gets beside the graph (after the model's shards, in `files` order).
 */
export interface QuantizedWeights {
  accuracyLevel: AccuracyLevel;
  tensors: ReadonlyMap<string, { ref: QuantizedTensorRef; location: string }>;
  /** The cache files, in the order of their locations (appended to the session's shard files). */
  files: string[];
}

/**
 * How MatMulNBits computes: 0 (unset) dequantizes B to float32 and runs an fp32 product; 4 quantizes A to int8
 * per block of K on the fly and runs an integer product (VNNI on AVX-512 CPUs).
 */
export type AccuracyLevel = 0 | 1 | 4;

/** Adds a weight held in memory as graph constants. */
export function quantizedConstants(g: GraphBuilder, q: BlockQuantized, hint = "qw"): QuantizedWeightValues {
  const { rows, kBlocks, blobBytes, zeroPointBytes } = q;
  return {
    rows, cols: q.cols, kBlocks, blobBytes, zeroPointBytes, spec: q.spec,
    data: g.constant({ dtype: "uint8", dims: [rows, kBlocks, blobBytes], data: q.data }, `${hint}_b`),
    scales: g.constant({ dtype: "float32", dims: [rows, kBlocks], data: q.scales }, `${hint}_scales`),
    ...(q.zeroPoints ? { zeroPoints: g.constant({ dtype: "uint8", dims: [rows, zeroPointBytes], data: q.zeroPoints }, `${hint}_zp`) } : {}),
  };
}

/**
 * Adds a cached weight as external initializers. `location` is the name under which the session makes the cache
 * file visible beside the graph (session.ts hard-links it like a shard); `prefix` names the initializers.
 */
export function quantizedExternal(g: GraphBuilder, ref: QuantizedTensorRef, location: string, prefix = `q.${ref.name}`): QuantizedWeightValues {
  const { rows, kBlocks, blobBytes, zeroPointBytes } = ref;
  const ext = (r: { offset: number; length: number }) => ({ location, offset: r.offset, length: r.length });
  return {
    rows, cols: ref.cols, kBlocks, blobBytes, zeroPointBytes, spec: ref.spec,
    data: g.external(`${prefix}.qweight`, { dtype: "uint8", dims: [rows, kBlocks, blobBytes], external: ext(ref.qweight) }),
    scales: g.external(`${prefix}.scales`, { dtype: "float32", dims: [rows, kBlocks], external: ext(ref.scales) }),
    ...(ref.zeroPoints ? { zeroPoints: g.external(`${prefix}.zero_points`, { dtype: "uint8", dims: [rows, zeroPointBytes], external: ext(ref.zeroPoints) }) } : {}),
  };
}

/** x [rows, K] · dequant(W)ᵀ → [rows, N], with an optional float32 bias [N]. */
export function matMulNBits(g: GraphBuilder, x: string, w: QuantizedWeightValues, accuracyLevel: AccuracyLevel, bias?: string): string {
  const sx = g.shape(x);
  if (sx[sx.length - 1] !== w.cols) throw new Error(`MatMulNBits: input [${sx}] has ${String(sx[sx.length - 1])} columns, the weight ${w.cols}`);
  const inputs = [x, w.data, w.scales, w.zeroPoints ?? "", ...(bias ? ["", bias] : [])];
  // Trailing empty names are optional inputs left out; ONNX allows them only before a given one.
  while (inputs[inputs.length - 1] === "") inputs.pop();
  return g.node("MatMulNBits", inputs, [{ dtype: "float32", shape: [...sx.slice(0, -1), w.rows] }], {
    K: w.cols, N: w.rows, bits: w.spec.bits, block_size: w.spec.blockSize, accuracy_level: accuracyLevel,
  }, "com.microsoft")[0]!;
}
