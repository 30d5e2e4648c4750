/**
 * Double-buffered weight prefetching: while one block's session runs on the main thread (ORT's run is synchronous
 * there), a worker thread reads and converts the next block's weights into a second set of buffers. Costs a
 * second block of float32 weights (the memory plan counts it) and hides most of the read time.
 */
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { LoraDropError } from "../util/errors";
import { BlockWeightInput, blockWeightInputs } from "./blockGraph";
import { LayerWeightReader } from "./layerWeights";
import type { PrefetchItem, PrefetchReply } from "./prefetchWorker";
import { ModelConfig } from "../models/config";

/** A block's weights as they will arrive: input name → float32 buffer. */
export type BlockWeights = Map<string, Float32Array>;

/** Reads blocks of weights in a worker thread, one request at a time. */
export class WeightPrefetcher {
  private worker: Worker;
  private pending: Promise<PrefetchReply> | undefined;
  private spare: ArrayBuffer[][] = [];

  constructor(private readonly reader: LayerWeightReader) {
    this.worker = new Worker(path.join(__dirname, "prefetchWorker.js"));
    this.worker.unref();
  }

  /** Starts reading the weights of layers `start…` for `inputs` (one entry per block layer). */
  start(start: number, k: number, inputs: BlockWeightInput[]): () => Promise<BlockWeights> {
    if (this.pending) throw new Error("a prefetch is already running");
    const list = inputs.filter((w) => w.local < k);
    const items: PrefetchItem[] = list.map((w) => {
      const name = `model.layers.${start + w.local}.${w.suffix}`;
      const ref = this.reader.ref(name, w.shape);
      return { file: ref.index.file, position: ref.index.dataStart + ref.entry.begin, bytes: ref.entry.end - ref.entry.begin, dtype: ref.entry.dtype, elements: w.shape.reduce((a, b) => a * b, 1) };
    });
    // Reuse a returned buffer set when its sizes match (every block of one shape), else allocate.
    const idx = this.spare.findIndex((set) => set.length === items.length && set.every((b, i) => b.byteLength === items[i]!.elements * 4));
    // Sets of another shape are dropped rather than kept: at most two sets are ever alive.
    if (idx < 0) this.spare = [];
    const buffers = idx >= 0 ? this.spare.splice(idx, 1)[0]! : items.map((it) => new ArrayBuffer(it.elements * 4));
    this.pending = new Promise<PrefetchReply>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.worker.once("error", onError);
      this.worker.once("message", (reply: PrefetchReply) => { this.worker.off("error", onError); resolve(reply); });
    });
    this.worker.postMessage({ items, buffers }, buffers);
    return async () => {
      const reply = await this.pending!;
      this.pending = undefined;
      if (reply.error) throw new LoraDropError("FILE_UNREADABLE", `reading the weights of layers ${start}–${start + k - 1} failed: ${reply.error}`, items[0]?.file);
      const out: BlockWeights = new Map();
      list.forEach((w, i) => out.set(w.name, new Float32Array(reply.buffers[i]!)));
      return out;
    };
  }

  /** Gives a block's buffers back for reuse once its run is over. */
  recycle(weights: BlockWeights): void {
    this.spare.push([...weights.values()].map((a) => a.buffer as ArrayBuffer));
  }

  /** Stops the worker. */
  async close(): Promise<void> {
    if (this.pending) await this.pending.catch(() => undefined);
    await this.worker.terminate();
  }
}

/** A block of consecutive decoder layers: the first layer and how many. */
export interface BlockSpan {
  start: number;
  k: number;
}

/**
 * Serves the weights of blocks in a fixed order (the streamed gradients: forward, then backward in reverse).
 * With `prefetch`, `take` hands out the block read meanwhile and starts a worker on the next one in the order,
 * so reading overlaps the caller's session runs; at most two blocks of buffers are alive. Without, `take` reads
 * the block now into the reader's reused buffers, which the next `take` overwrites.
 */
export class BlockWeightQueue {
  private readonly prefetcher: WeightPrefetcher | undefined;
  private pending: (() => Promise<BlockWeights>) | undefined;
  private at = 0;

  constructor(private readonly reader: LayerWeightReader, private readonly cfg: ModelConfig, private readonly order: readonly BlockSpan[], prefetch: boolean) {
    this.prefetcher = prefetch && order.length > 1 ? new WeightPrefetcher(reader) : undefined;
    if (this.prefetcher) this.pending = this.fetch(0);
  }

  /** Whether a worker thread reads ahead. */
  get prefetching(): boolean {
    return this.prefetcher !== undefined;
  }

  /** The weights of the next block in the order (input name → float32); starts reading the one after. */
  async take(): Promise<BlockWeights> {
    const i = this.at;
    const b = this.order[i];
    if (!b) throw new Error(`all ${this.order.length} blocks were already taken`);
    this.at++;
    if (!this.pending) {
      const weights: BlockWeights = new Map();
      const inputs = blockWeightInputs(this.cfg, b.k);
      for (let j = 0; j < b.k; j++) for (const [name, buf] of this.reader.readLayer(b.start + j, inputs.filter((w) => w.local === j))) weights.set(name, buf);
      return weights;
    }
    const weights = await this.pending();
    this.pending = i + 1 < this.order.length ? this.fetch(i + 1) : undefined;
    return weights;
  }

  /** Gives a block's weights back once its runs are over (their buffers take the next prefetched block). */
  release(weights: BlockWeights): void {
    this.prefetcher?.recycle(weights);
  }

  /** Stops the worker (waiting for a read in flight). */
  async close(): Promise<void> {
    this.pending = undefined;
    await this.prefetcher?.close();
  }

  private fetch(i: number): () => Promise<BlockWeights> {
    const b = this.order[i]!;
    return this.prefetcher!.start(b.start, b.k, blockWeightInputs(this.cfg, b.k));
  }
}
