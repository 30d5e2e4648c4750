/**
 * Per-output-channel int8 quantization of a linear layer's weight W [N = out, K = in] into the layout of
 * onnxruntime's integer matmuls, com.microsoft DynamicQuantizeMatMul and the standard MatMulInteger
 * (Y = A · B with B [K, N]):
 *
 * - `data`: int8 [K, N], the transpose of W's codes (those operators take the weight input-major);
 * - `scales`: float32 [N], one symmetric scale per output column, max |w| / 127 (codes −127…127, no zero point,
 *   so the operators' b_zero_point input is left out).
 *
 * Dequantization is w[n, k] = data[k, n] · scales[n]; the error is at most half a step, scales[n] / 2.
 * The engine multiplies with MatMulNBits instead (extension/core/quant/blockQuant.ts, measured faster); this layout
 * stays for quantSpeed.ts's comparison of the quantizers.
 */
import { LoraDropError } from "../../extension/core/util/errors";
import { forEachStoredRows } from "../../extension/core/io/safetensors";

/** A weight quantized per output column, int8 [K, N]. */
export interface ColumnQuantized {
  rows: number;
  cols: number;
  data: Int8Array;
  scales: Float32Array;
}

/** Rows handled per step: a tile of the transpose whose writes stay within a few cache lines per column. */
const TILE = 64;

/** Quantizes float32 W [rows, cols] per output row into the transposed int8 layout. Throws NUMERICAL on NaN/Inf. */
export function quantizeColumns(w: Float32Array, rows: number, cols: number, what = "weight"): ColumnQuantized {
  if (w.length !== rows * cols) throw new LoraDropError("INVALID_ARGUMENT", `quantize: ${w.length} values for [${rows}, ${cols}]`);
  const out: ColumnQuantized = { rows, cols, data: new Int8Array(rows * cols), scales: new Float32Array(rows) };
  quantizeColumnRowsInto(w, 0, rows, out, what);
  return out;
}

/** Quantizes rows `first … first + count` of W (given as `src`, [count, cols]) into `out`. */
export function quantizeColumnRowsInto(src: Float32Array, first: number, count: number, out: ColumnQuantized, what = "weight"): void {
  const K = out.cols, N = out.rows;
  const inv = new Float64Array(count);
  for (let r = 0; r < count; r++) {
    let m = 0, sum = 0;
    for (let k = r * K; k < (r + 1) * K; k++) {
      const a = Math.abs(src[k]!);
      m = a > m ? a : m;
      sum += src[k]!;
    }
    if (sum !== sum || !Number.isFinite(m)) throw new LoraDropError("NUMERICAL", `${what}: row ${first + r} holds NaN or Inf, which quantization cannot represent`, undefined, what);
    const scale = Math.fround(m / 127);
    out.scales[first + r] = scale;
    inv[r] = scale === 0 ? 0 : 1 / scale;
  }
  // Transposed writes in tiles of TILE rows, so each output row of the transpose gets a run of TILE bytes.
  for (let r0 = 0; r0 < count; r0 += TILE) {
    const r1 = Math.min(count, r0 + TILE);
    for (let k = 0; k < K; k++) {
      const at = k * N + first;
      for (let r = r0; r < r1; r++) out.data[at + r] = Math.round(src[r * K + k]! * inv[r]!);
    }
  }
}

/** Quantizes a weight as stored (F32, F16 or BF16 bytes, [rows, cols]) a tile of rows at a time. */
export function quantizeColumnsStored(bytes: Uint8Array, dtype: string, rows: number, cols: number, what?: string): ColumnQuantized {
  const out: ColumnQuantized = { rows, cols, data: new Int8Array(rows * cols), scales: new Float32Array(rows) };
  forEachStoredRows(bytes, dtype, rows, cols, TILE, (part, first, n) => quantizeColumnRowsInto(part, first, n, out, what), what);
  return out;
}

/** The float32 W [rows, cols] a column-quantized weight stands for. */
export function dequantizeColumns(q: ColumnQuantized): Float32Array {
  const { rows: N, cols: K } = q;
  const out = new Float32Array(N * K);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[n * K + k] = q.data[k * N + n]! * q.scales[n]!;
  return out;
}
