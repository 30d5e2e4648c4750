/**
 * One unit of the cache builder's work: quantize one tensor of a source safetensors file and write its scales,
 * codes and zero points at their planned byte positions of the cache file. Runs on the main thread or in a
 * worker (quantWorker.ts); either way the source bytes are read through safetensors.ts's checked reader.
 */
import * as fs from "node:fs";
import { readTensorBytes, SafetensorsIndex } from "../io/safetensors";
import { QuantSpec, quantizeStored } from "./blockQuant";

/** A tensor to quantize and where its parts go (absolute positions in `target`). */
export interface QuantJob {
  index: SafetensorsIndex;
  name: string;
  spec: QuantSpec;
  target: string;
  scalesAt: number;
  qweightAt: number;
  zeroPointsAt?: number;
}

/** Quantizes the job's tensor and writes its parts into the target file (opened per job: jobs are large). */
export function quantizeInto(job: QuantJob): void {
  const t = job.index.tensors.get(job.name)!;
  const q = quantizeStored(readTensorBytes(job.index, job.name), t.dtype, t.shape[0]!, t.shape[1]!, job.spec, job.name);
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
