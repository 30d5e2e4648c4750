/**
 * Worker thread of the quantized-weight cache (quantCache.ts): quantizes its share of a source file's tensors and
 * writes each part at its planned offset of the cache file being built, so several workers fill one file at once.
 */
import { parentPort, workerData } from "node:worker_threads";
import { quantizeInto, QuantJob } from "./quantJobs";

/** What the worker is started with. */
export interface QuantWorkerData {
  jobs: QuantJob[];
}

const data = workerData as QuantWorkerData;
try {
  for (const job of data.jobs) {
    quantizeInto(job);
    parentPort!.postMessage({ done: job.name });
  }
  parentPort!.postMessage({ finished: true });
} catch (e) {
  const err = e as { code?: string; message?: string; field?: string };
  parentPort!.postMessage({ error: { code: err.code, message: err.message ?? String(e), field: err.field } });
}
