/**
 * The precisions the onnx engine runs a model's projections in, and what each one means on disk and in the graph.
 * `fp32` is the model as stored (F16/BF16 cast to float32). `int8` and `int4` quantize every projection weight of
 * the decoder or encoder layers block-wise at load (blockQuant.ts, cached by quantCache.ts) and multiply through
 * onnxruntime's MatMulNBits with int8 compute (accuracy level 4: activations quantized per block of K, VNNI on
 * AVX-512 CPUs). Embeddings, norms, the LM head, the LoRA branches and the norm taps stay float32.
 *
 * How each is stored is quantFormats.ts. This file holds only the names, so the profile and sweep schemas (read by
 * the panel too) can check them without the quantizer.
 */
import { LoraDropError, describeValue } from "../util/errors";

/** Every precision; fp32 (the default) first. */
export const PRECISIONS = ["fp32", "int8", "int4"] as const;
/** One of PRECISIONS. */
export type Precision = (typeof PRECISIONS)[number];

/** Throws INVALID_ARGUMENT unless `value` is absent or one of PRECISIONS; returns it (default fp32). */
export function checkPrecision(value: unknown): Precision {
  if (value === undefined) return "fp32";
  if (typeof value !== "string" || !(PRECISIONS as readonly string[]).includes(value)) {
    throw new LoraDropError("INVALID_ARGUMENT", `precision must be one of ${PRECISIONS.join(", ")}, got ${describeValue(value)}`, undefined, "precision");
  }
  return value as Precision;
}

/**
 * Checks the precision and that the engine runs it: a quantized precision is the onnx engine's (MatMulNBits); the
 * torch engine's precision is its dtype. Returns the precision (default fp32).
 */
export function checkEnginePrecision(opts: { precision?: unknown; engine?: string }): Precision {
  const precision = checkPrecision(opts.precision);
  if (precision !== "fp32" && (opts.engine ?? "onnx") === "torch") {
    throw new LoraDropError("INVALID_ARGUMENT", `--precision ${precision} runs on the onnx engine (onnxruntime's MatMulNBits); the torch engine's precision is --dtype (float32, bfloat16, float16)`, undefined, "precision");
  }
  return precision;
}
