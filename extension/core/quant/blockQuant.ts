/**
 * Block-wise quantization of a linear layer's weight W [N = out, K = in] into the layout of onnxruntime's
 * com.microsoft MatMulNBits operator (Y = A · dequant(B)ᵀ):
 *
 * - `data`, the operator's input B: uint8 [N, kBlocks, blobBytes], kBlocks = ceil(K / blockSize),
 *   blobBytes = blockSize · bits / 8. Codes run along K; with 4 bits, the first code of a byte is its low nibble.
 *   A last block that K does not fill is padded with the block's zero point (it dequantizes to 0).
 * - `scales`: float32 [N, kBlocks] (row-major, the same bytes as the flat [N · kBlocks] of older schemas).
 * - `zeroPoints` (asymmetric only): uint8 [N, ceil(kBlocks · bits / 8)], packed like B (4 bits: two per byte,
 *   low nibble first). Without it the operator uses 2^(bits-1), which the symmetric codes are centred on.
 *
 * Dequantization is w = (code − zero point) · scale. Symmetric blocks take scale = m / −2^(bits−1), where m is the
 * block's value of largest magnitude (as llama.cpp's Q4_0/Q8_0 and onnxruntime's own quantizer do): m lands on
 * code 0 exactly and all 2^bits codes are used. Asymmetric blocks span [min(w, 0), max(w, 0)] so that 0 stays
 * exact. See `quantErrorBound` for what that guarantees. With `rangeSearch`, an asymmetric block also tries that
 * range shrunk by each factor of RANGE_FACTORS and keeps the one with the least squared error over the block (the
 * clipping search of llama.cpp's k-quants and of AWQ): the extremes are clipped, everything else is rounded on a
 * finer grid. (Stopping at the first rise of the error, twice as fast, moved the bench model's importance by 8.7e-3
 * instead of 7.0e-3: the error is not unimodal in the factor.) The error of a block is then never above the min–max
 * one's, and no longer bounded per weight.
 */
import { LoraDropError } from "../util/errors";
import { forEachStoredRows } from "../io/safetensors";

/** Bits per weight code: the widths MatMulNBits runs on the CPU. */
export type QuantBits = 4 | 8;

/** How a weight is quantized. */
export interface QuantSpec {
  bits: QuantBits;
  /** Weights per block along K: a power of two ≥ 16 (the operator's rule). */
  blockSize: number;
  /** Symmetric blocks (no zero-point input) or asymmetric ones (a packed zero point per block). */
  symmetric: boolean;
  /** Asymmetric blocks only: choose each block's range by least squared error (see the file comment). */
  rangeSearch?: boolean;
}

/** The byte layout of one quantized [N, K] matrix. */
export interface QuantLayout {
  rows: number;
  cols: number;
  kBlocks: number;
  blobBytes: number;
  /** Bytes of packed zero points per row (0 when symmetric). */
  zeroPointBytes: number;
}

/** A quantized matrix in MatMulNBits's layout (see the file comment). */
export interface BlockQuantized extends QuantLayout {
  spec: QuantSpec;
  data: Uint8Array;
  scales: Float32Array;
  zeroPoints?: Uint8Array;
}

/** Checks a spec against the operator's rules; throws INVALID_ARGUMENT naming what is wrong. */
export function checkQuantSpec(spec: QuantSpec): void {
  if (spec.bits !== 4 && spec.bits !== 8) throw new LoraDropError("INVALID_ARGUMENT", `quantization bits ${spec.bits}: expected 4 or 8`);
  const b = spec.blockSize;
  if (!Number.isInteger(b) || b < 16 || (b & (b - 1)) !== 0) {
    throw new LoraDropError("INVALID_ARGUMENT", `quantization block size ${b}: expected a power of two ≥ 16`);
  }
  if (spec.rangeSearch && spec.symmetric) throw new LoraDropError("INVALID_ARGUMENT", "the quantization range search applies to asymmetric blocks only");
}

/**
 * The fractions of a block's min–max range that `rangeSearch` tries, the whole range first (so a tie keeps it).
 * Measured on the TinyLlama-shaped bench model at 4 bits in blocks of 128: importance against fp32 moved by 7.0e-3
 * at most with these seven, 2.2e-2 with the min–max range alone.
 */
export const RANGE_FACTORS: readonly number[] = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7];

/** Sum of squared errors of src[start, end) quantized with `scale` and `zp` to codes 0…top. */
function blockError(src: Float32Array, start: number, end: number, scale: number, zp: number, top: number): number {
  const inv = 1 / scale, shift = zp + 0.5;
  let err = 0;
  for (let i = start; i < end; i++) {
    // Truncation is a floor for x ≥ 0; below 0 the clamp gives code 0 either way.
    const c = (src[i]! * inv + shift) | 0;
    const d = ((c < 0 ? 0 : c > top ? top : c) - zp) * scale - src[i]!;
    err += d * d;
  }
  return err;
}

/** The layout MatMulNBits expects for a [rows, cols] weight. */
export function quantLayout(rows: number, cols: number, spec: QuantSpec): QuantLayout {
  checkQuantSpec(spec);
  const kBlocks = Math.ceil(cols / spec.blockSize);
  return {
    rows, cols, kBlocks, blobBytes: (spec.blockSize * spec.bits) / 8,
    zeroPointBytes: spec.symmetric ? 0 : Math.ceil((kBlocks * spec.bits) / 8),
  };
}

/**
 * The largest |w − dequant(quant(w))| the format allows in a block of scale `scale`: half a step, except for
 * symmetric blocks, whose top code (2^(bits−1) − 1) is one step short of +|m| when the opposite-signed extreme
 * reaches it, so up to one full step there.
 */
export function quantErrorBound(spec: QuantSpec, scale: number): number {
  return Math.abs(scale) * (spec.symmetric ? 1 : 0.5);
}

/** Allocates an empty quantized matrix of the given shape. */
export function allocQuantized(rows: number, cols: number, spec: QuantSpec): BlockQuantized {
  const l = quantLayout(rows, cols, spec);
  return {
    ...l, spec,
    data: new Uint8Array(rows * l.kBlocks * l.blobBytes),
    scales: new Float32Array(rows * l.kBlocks),
    zeroPoints: spec.symmetric ? undefined : new Uint8Array(rows * l.zeroPointBytes),
  };
}

/**
 * Quantizes float32 rows `src` ([count, cols], row-major) into rows `firstRow …` of `out`. Throws NUMERICAL for
 * a block holding NaN or ±Inf, which no scale can represent. `what` names the tensor in that error.
 */
export function quantizeRowsInto(src: Float32Array, count: number, out: BlockQuantized, firstRow: number, what = "weight"): void {
  const { cols: K, kBlocks, blobBytes, zeroPointBytes, spec } = out;
  const bs = spec.blockSize;
  const levels = 1 << spec.bits;
  const half = levels >> 1;
  const top = levels - 1;
  const four = spec.bits === 4;
  const codes = new Uint8Array(bs);
  for (let r = 0; r < count; r++) {
    const row = firstRow + r;
    const base = r * K;
    for (let b = 0; b < kBlocks; b++) {
      const start = base + b * bs;
      const end = Math.min(start + bs, base + K);
      // Conditional expressions rather than ifs, and NaN caught through the sum (it fails both comparisons):
      // measured 2.5× faster than three branches per value, whose mispredictions dominate on random data.
      let lo = 0, hi = 0, sum = 0;
      for (let i = start; i < end; i++) {
        const w = src[i]!;
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
        sum += w;
      }
      if (sum !== sum || !Number.isFinite(lo) || !Number.isFinite(hi)) {
        throw new LoraDropError("NUMERICAL", `${what}: row ${row}, block ${b} holds NaN or Inf, which quantization cannot represent`, undefined, what);
      }
      let scale: number, zp: number;
      if (spec.symmetric) {
        // m is the signed value of largest magnitude; it maps exactly onto code 0.
        const m = -lo > hi ? lo : hi;
        scale = m === 0 ? 0 : Math.fround(m / -half);
        zp = half;
      } else {
        scale = Math.fround((hi - lo) / top);
        zp = scale === 0 ? 0 : Math.min(top, Math.max(0, Math.round(-lo / scale)));
        if (spec.rangeSearch && scale !== 0) {
          let best = blockError(src, start, end, scale, zp, top);
          for (let f = 1; f < RANGE_FACTORS.length; f++) {
            const s = Math.fround(((hi - lo) * RANGE_FACTORS[f]!) / top);
            const z = Math.min(top, Math.max(0, Math.round((-lo * RANGE_FACTORS[f]!) / s)));
            const err = blockError(src, start, end, s, z, top);
            if (err < best) { best = err; scale = s; zp = z; }
          }
        }
      }
      const inv = scale === 0 ? 0 : 1 / scale;
      // round(x) as (x + 0.5) | 0: a floor for x + 0.5 ≥ 0, and below that (a clipped extreme of a searched range)
      // the clamp gives code 0 either way; the top is clamped too (the opposite-signed extreme of a symmetric block).
      const shift = zp + 0.5;
      out.scales[row * kBlocks + b] = scale;
      const blob = (row * kBlocks + b) * blobBytes;
      if (end - start === bs && four) {
        // Full blocks (the common case) write their codes straight out, 4-bit ones two per byte.
        for (let i = start, j = blob; i < end; i += 2, j++) {
          const c0 = (src[i]! * inv + shift) | 0, c1 = (src[i + 1]! * inv + shift) | 0;
          out.data[j] = (c0 < 0 ? 0 : c0 > top ? top : c0) | ((c1 < 0 ? 0 : c1 > top ? top : c1) << 4);
        }
      } else if (end - start === bs) {
        for (let i = start, j = blob; i < end; i++, j++) {
          const c = (src[i]! * inv + shift) | 0;
          out.data[j] = c < 0 ? 0 : c > top ? top : c;
        }
      } else {
        let n = 0;
        for (let i = start; i < end; i++, n++) {
          const c = (src[i]! * inv + shift) | 0;
          codes[n] = c > top ? top : c < 0 ? 0 : c;
        }
        // A block that K does not fill is padded with its zero point, which dequantizes to 0.
        for (; n < bs; n++) codes[n] = zp;
        if (four) for (let j = 0; j < blobBytes; j++) out.data[blob + j] = codes[2 * j]! | (codes[2 * j + 1]! << 4);
        else out.data.set(codes, blob);
      }
      if (out.zeroPoints) {
        const at = row * zeroPointBytes;
        if (four) out.zeroPoints[at + (b >> 1)] |= (b & 1) ? zp << 4 : zp;
        else out.zeroPoints[at + b] = zp;
      }
    }
  }
}

/** Quantizes a float32 [rows, cols] matrix. */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, spec: QuantSpec, what?: string): BlockQuantized {
  if (w.length !== rows * cols) throw new LoraDropError("INVALID_ARGUMENT", `quantize: ${w.length} values for [${rows}, ${cols}]`);
  const out = allocQuantized(rows, cols, spec);
  quantizeRowsInto(w, rows, out, 0, what);
  return out;
}

/** Rows converted to float32 per step when quantizing stored bytes: small enough to stay in cache. */
const ROWS_PER_STEP = 16;

/**
 * Quantizes a weight as stored in safetensors (F32, F16 or BF16 bytes, [rows, cols] row-major), converting a few
 * rows at a time, so no float32 copy of the whole tensor is made.
 */
export function quantizeStored(bytes: Uint8Array, dtype: string, rows: number, cols: number, spec: QuantSpec, what?: string): BlockQuantized {
  const out = allocQuantized(rows, cols, spec);
  forEachStoredRows(bytes, dtype, rows, cols, ROWS_PER_STEP, (part, first, n) => quantizeRowsInto(part, n, out, first, what), what);
  return out;
}

/** The float32 [rows, cols] matrix a quantized one stands for: (code − zero point) · scale. */
export function dequantize(q: BlockQuantized): Float32Array {
  const { rows, cols: K, kBlocks, blobBytes, zeroPointBytes, spec } = q;
  const bs = spec.blockSize;
  const four = spec.bits === 4;
  const half = 1 << (spec.bits - 1);
  const out = new Float32Array(rows * K);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const scale = q.scales[r * kBlocks + b]!;
      let zp = half;
      if (q.zeroPoints) {
        const z = q.zeroPoints[r * zeroPointBytes + (four ? b >> 1 : b)]!;
        zp = four ? ((b & 1) ? z >> 4 : z & 15) : z;
      }
      const blob = (r * kBlocks + b) * blobBytes;
      const n = Math.min(bs, K - b * bs);
      for (let i = 0; i < n; i++) {
        const code = four ? (q.data[blob + (i >> 1)]! >> ((i & 1) * 4)) & 15 : q.data[blob + i]!;
        out[r * K + b * bs + i] = (code - zp) * scale;
      }
    }
  }
  return out;
}
