/**
 * Worker thread of the weight prefetcher (see prefetch.ts): reads the requested tensors from the shards and
 * converts them to float32 into the buffers it was handed, then hands them back. It runs while the main thread is
 * blocked in an ORT session run, so reading block i+1 overlaps computing block i.
 */
import * as fs from "node:fs";
import { parentPort } from "node:worker_threads";
import { convertToF32 } from "../io/safetensors";
import { openRegularFile } from "../io/regularFile";

/** One tensor to read: where its bytes are and how to convert them. */
export interface PrefetchItem {
  file: string;
  position: number;
  bytes: number;
  dtype: string;
  elements: number;
}

/** A request: the tensors, and one buffer of the right size for each (transferred). */
export interface PrefetchRequest {
  items: PrefetchItem[];
  buffers: ArrayBuffer[];
}

/** The reply: the filled buffers (transferred back), or the error message. */
export interface PrefetchReply {
  buffers: ArrayBuffer[];
  error?: string;
}

const fds = new Map<string, number>();
let scratch = new Uint8Array(0);

function fill(req: PrefetchRequest): void {
  req.items.forEach((it, i) => {
    let fd = fds.get(it.file);
    if (fd === undefined) {
      fd = openRegularFile(it.file, { maxBytes: Number.MAX_SAFE_INTEGER, what: "a safetensors file" }).fd;
      fds.set(it.file, fd);
    }
    if (scratch.length < it.bytes) scratch = new Uint8Array(it.bytes);
    let got = 0;
    while (got < it.bytes) {
      const n = fs.readSync(fd, scratch, got, it.bytes - got, it.position + got);
      if (n === 0) throw new Error(`unexpected end of file at byte ${it.position + got}`);
      got += n;
    }
    convertToF32(scratch, it.dtype, new Float32Array(req.buffers[i]!, 0, it.elements));
  });
}

parentPort?.on("message", (req: PrefetchRequest | "close") => {
  if (req === "close") {
    for (const fd of fds.values()) fs.closeSync(fd);
    fds.clear();
    parentPort!.close();
    return;
  }
  let error: string | undefined;
  try {
    fill(req);
  } catch (e) {
    error = (e as Error).message;
  }
  const reply: PrefetchReply = { buffers: req.buffers, ...(error ? { error } : {}) };
  parentPort!.postMessage(reply, req.buffers);
});
