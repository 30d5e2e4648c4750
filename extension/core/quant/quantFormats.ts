/**
 * How each quantized precision (precision.ts) stores and multiplies its weights. The formats are the ones measured
 * fastest at equal fidelity on the TinyLlama shape (docs/benchmarks.md): int8 symmetric in blocks of 128 (llama.cpp's
 * Q8_0 is symmetric in blocks of 32), int4 with a zero point per block of 64; both with int8 compute (accuracy
 * level 4).
 */
import type { QuantSpec } from "./blockQuant";
import type { AccuracyLevel } from "./quantLinear";
import type { Precision } from "./precision";

/** A precision whose weights are quantized. */
export type QuantPrecision = Exclude<Precision, "fp32">;

/** How each quantized precision stores and multiplies its weights. */
export const PRECISION_FORMATS: Readonly<Record<QuantPrecision, { spec: QuantSpec; accuracyLevel: AccuracyLevel }>> = {
  int8: { spec: { bits: 8, blockSize: 128, symmetric: true }, accuracyLevel: 4 },
  int4: { spec: { bits: 4, blockSize: 64, symmetric: false }, accuracyLevel: 4 },
};

/** Bytes one projection weight takes in memory at a precision (codes, scales and zero points together). */
export function bytesPerWeight(precision: Precision): number {
  if (precision === "fp32") return 4;
  const { spec } = PRECISION_FORMATS[precision];
  return spec.bits / 8 + (4 + (spec.symmetric ? 0 : spec.bits / 8)) / spec.blockSize;
}
