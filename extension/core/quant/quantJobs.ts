/**
 * One unit of the cache builder's work: quantize one tensor of a source safetensors file and write its scales,
 * codes and zero points at their planned byte positions of the cache file. Runs on the main thread or in a
 * worker (quantWorker.ts); either way the source bytes are read through safetensors.ts's checked reader.
 */
import * as fs from "node:fs";
import { LoraDropError } from "../util/errors";
import { convertToF32, readTensorBytes, SafetensorsIndex } from "../io/safetensors";
import { BlockQuantized, QuantSpec, quantizeMatrix, quantizeStored } from "./blockQuant";

/** A tensor to quantize and where its parts go (absolute positions in `target`). */
export interface QuantJob {
  index: SafetensorsIndex;
  name: string;
  spec: QuantSpec;
  /** The tensor is stored [in, out] and is quantized as its transpose (QuantSource.transposed). */
  transposed?: boolean;
  target: string;
  scalesAt: number;
  qweightAt: number;
  zeroPointsAt?: number;
}

/** Quantizes the job's tensor and writes its parts into the target file (opened per job: jobs are large). */
export function quantizeInto(job: QuantJob): void {
  const t = job.index.tensors.get(job.name)!;
  const bytes = readTensorBytes(job.index, job.name);
  const q = job.transposed
    ? quantizeTransposed(bytes, t.dtype, t.shape[0]!, t.shape[1]!, job.spec, job.name)
    : quantizeStored(bytes, t.dtype, t.shape[0]!, t.shape[1]!, job.spec, job.name);
  const fd = fs.openSync(job.target, "r+");
  try {
    writeAt(fd, new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength), job.scalesAt);
    writeAt(fd, q.data, job.qweightAt);
    if (job.zeroPointsAt !== undefined && q.zeroPoints) writeAt(fd, q.zeroPoints, job.zeroPointsAt);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes all of `buf` at `position`. */
export function writeAt(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

/**
 * Quantizes the transpose of a stored [rows, cols] weight: converted to float32 whole and transposed first. Only
 * GPT-2's Conv1D weights take this path; they are small next to a Llama's, so the float32 copy costs little.
 */
function quantizeTransposed(bytes: Uint8Array, dtype: string, rows: number, cols: number, spec: QuantSpec, what: string): BlockQuantized {
  if (!["F32", "F16", "BF16"].includes(dtype)) throw new LoraDropError("SAFETENSORS_BAD_DTYPE", `${what} has dtype ${dtype}; quantization reads F32, F16 or BF16`, undefined, what);
  const w = new Float32Array(rows * cols);
  convertToF32(bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(), dtype, w);
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return quantizeMatrix(t, cols, rows, spec, what);
}
