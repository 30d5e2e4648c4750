/**
 * How each quantized precision (precision.ts) stores and multiplies its weights, both with int8 compute (accuracy
 * level 4), measured on the TinyLlama shape (docs/benchmarks.md, scripts/bench/quantOps.ts): int8 symmetric in blocks
 * of 128 (llama.cpp's Q8_0 is symmetric in blocks of 32); int4 with a zero point per block of 128 (GPTQ's and AWQ's
 * usual group size, 4.28 bits a weight against Q4_0's 4.5), its range chosen by least squared error. MatMulNBits
 * runs 4-bit blocks of 128 about 1.3× as fast as blocks of 64 on AVX-512 VNNI; the range search more than makes up
 * the larger blocks' error (bench model importance against fp32: 7.0e-3 at most, against 1.2e-2 for min–max
 * blocks of 64 and 2.2e-2 of 128, on the same tokens).
 */
import type { QuantSpec } from "./blockQuant";
import type { AccuracyLevel } from "./quantLinear";
import type { Precision } from "./precision";

/** A precision whose weights are quantized. */
export type QuantPrecision = Exclude<Precision, "fp32">;

/** How each quantized precision stores and multiplies its weights. */
export const PRECISION_FORMATS: Readonly<Record<QuantPrecision, { spec: QuantSpec; accuracyLevel: AccuracyLevel }>> = {
  int8: { spec: { bits: 8, blockSize: 128, symmetric: true }, accuracyLevel: 4 },
  int4: { spec: { bits: 4, blockSize: 128, symmetric: false, rangeSearch: true }, accuracyLevel: 4 },
};

/** Bytes one projection weight takes in memory at a precision (codes, scales and zero points together). */
export function bytesPerWeight(precision: Precision): number {
  if (precision === "fp32") return 4;
  const { spec } = PRECISION_FORMATS[precision];
  return spec.bits / 8 + (4 + (spec.symmetric ? 0 : spec.bits / 8)) / spec.blockSize;
}
