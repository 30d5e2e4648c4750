/**
 * An onnxruntime session that lives in a worker thread (sessionWorker.ts). onnxruntime-node creates and runs
 * sessions synchronously on the calling thread, so sessions made on the main thread are made one after another;
 * made in workers, several are created at once, one core each — creation is mostly single-threaded weight
 * prepacking — while a run still uses the session's own intra-op threads.
 */
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { LoraDropError, type ErrorCode } from "../util/errors";
import type { ExecutionProvider, SessionOptions } from "./session";

/** A tensor as it crosses threads. */
export interface WireTensor { type: "float32" | "int64"; data: Float32Array | BigInt64Array; dims: number[] }

/** An error as it crosses threads. */
export interface WireError { code?: ErrorCode; message: string; file?: string; field?: string }

/** What the worker is started with: the graph and the session options (no logger: it cannot cross threads). */
export interface ThreadSessionInit { modelBytes: Uint8Array; options: Omit<SessionOptions, "log"> }

export type ThreadRequest =
  | { kind: "run"; id: number; feeds: Record<string, WireTensor>; fetches: string[] }
  | { kind: "dispose" };

export type ThreadReply =
  | { kind: "ready"; device: ExecutionProvider }
  | { kind: "error"; error: WireError }
  | { kind: "result"; id: number; outputs?: Record<string, WireTensor>; error?: WireError }
  | { kind: "disposed" };

function fromWire(e: WireError): Error {
  return e.code ? new LoraDropError(e.code, e.message, e.file, e.field) : new Error(e.message);
}

/** A session in its own worker thread. */
export class ThreadSession {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (o: Record<string, WireTensor>) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker, readonly device: ExecutionProvider) {
    worker.on("message", (reply: ThreadReply) => {
      if (reply.kind !== "result") return;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error) p?.reject(fromWire(reply.error));
      else p?.resolve(reply.outputs!);
    });
    worker.on("error", (e) => this.fail(e));
    worker.on("exit", (code) => this.fail(new Error(`the session thread exited (code ${code})`)));
  }

  /** Starts a worker and creates the session there; resolves once it is ready. */
  static create(modelBytes: Uint8Array, options: SessionOptions): Promise<ThreadSession> {
    const { log: _log, ...rest } = options;
    const worker = new Worker(path.join(__dirname, "sessionWorker.js"), { workerData: { modelBytes, options: rest } satisfies ThreadSessionInit });
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      worker.once("error", onError);
      worker.once("message", (reply: ThreadReply) => {
        worker.off("error", onError);
        if (reply.kind === "ready") resolve(new ThreadSession(worker, reply.device));
        else {
          void worker.terminate();
          reject(reply.kind === "error" ? fromWire(reply.error) : new Error(`unexpected reply ${reply.kind}`));
        }
      });
    });
  }

  /** Runs the session on `feeds` and returns the float32 outputs named in `fetches`. The feeds' buffers are moved. */
  run(feeds: Record<string, WireTensor>, fetches: string[]): Promise<Record<string, WireTensor>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ kind: "run", id, feeds, fetches } satisfies ThreadRequest, Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer));
    });
  }

  /** Releases the session and ends the thread. */
  async dispose(): Promise<void> {
    if (this.failure) return;
    const done = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage({ kind: "dispose" } satisfies ThreadRequest);
    await done;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}
