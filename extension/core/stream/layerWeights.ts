/**
 * Reads decoder-layer weights and embedding rows straight from the safetensors shards into float32 buffers,
 * converting BF16/F16 in JavaScript. Buffers are reused from block to block, so the resident weights never exceed
 * one block's worth however many layers the model has; the raw bytes pass through one scratch buffer.
 */
import * as fs from "node:fs";
import { HfModel, WeightRef } from "../models/hfModel";
import { LoraDropError } from "../util/errors";
import { convertToF32 } from "../io/safetensors";
import { BlockWeightInput } from "./blockGraph";
import { openRegularFile } from "../io/regularFile";

const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** Reads `length` bytes at `position` of `file` into `buf` (whole or error). */
function readAt(fd: number, buf: Uint8Array, length: number, position: number, file: string, name: string): void {
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new LoraDropError("SAFETENSORS_TRUNCATED", `tensor ${name}: unexpected end of file`, file, name);
    got += n;
  }
}

/** Streams weights of a model from its shards, with open file handles and reusable buffers. */
export class LayerWeightReader {
  private fds = new Map<string, number>();
  private scratch = new Uint8Array(0);
  /** float32 buffers by `<local>.<suffix>`, reused by every block. */
  private buffers = new Map<string, Float32Array>();

  constructor(private readonly model: HfModel) {}

  /** The stored tensor for a name, checked against the expected shape and dtype. */
  ref(name: string, shape: number[]): WeightRef {
    const ref = this.model.weights.get(name);
    if (!ref) throw new LoraDropError("TENSOR_MISSING", `weight ${name} is missing from the checkpoint`, this.model.dir, name);
    const s = ref.entry.shape;
    if (s.length !== shape.length || s.some((d, i) => d !== shape[i])) {
      throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `weight ${name} has shape [${s}] but config.json implies [${shape}]`, ref.index.file, name);
    }
    if (!SIZES[ref.entry.dtype]) throw new LoraDropError("SAFETENSORS_BAD_DTYPE", `weight ${name} has dtype ${ref.entry.dtype}; expected F32, F16 or BF16`, ref.index.file, name);
    return ref;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      // Reopened after the header was read: checked again, so a file swapped for a FIFO meanwhile cannot block.
      fd = openRegularFile(file, { maxBytes: Number.MAX_SAFE_INTEGER, what: "a safetensors file" }).fd;
      this.fds.set(file, fd);
    }
    return fd;
  }

  private scratchOf(bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
    return this.scratch;
  }

  /** Reads one weight into the reused float32 buffer kept under `key`. */
  read(name: string, shape: number[], key: string): Float32Array {
    const ref = this.ref(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    let buf = this.buffers.get(key);
    if (!buf || buf.length !== n) {
      buf = new Float32Array(n);
      this.buffers.set(key, buf);
    }
    const bytes = ref.entry.end - ref.entry.begin;
    const raw = this.scratchOf(bytes);
    readAt(this.fd(ref.index.file), raw, bytes, ref.index.dataStart + ref.entry.begin, ref.index.file, name);
    convertToF32(raw, ref.entry.dtype, buf);
    return buf;
  }

  /** Reads layer `layer`'s weights for a block's inputs into reused float32 buffers, keyed by input name. */
  readLayer(layer: number, inputs: BlockWeightInput[]): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const w of inputs) out.set(w.name, this.read(`model.layers.${layer}.${w.suffix}`, w.shape, `${w.local}.${w.suffix}`));
    return out;
  }

  /** Embedding rows for token ids, [ids.length, hidden], read row by row (the table is never loaded whole). */
  embed(ids: number[]): Float32Array {
    const cfg = this.model.config;
    const H = cfg.hiddenSize;
    const ref = this.ref("model.embed_tokens.weight", [cfg.vocabSize, H]);
    const size = SIZES[ref.entry.dtype]!;
    const rowBytes = H * size;
    const out = new Float32Array(ids.length * H);
    const raw = new Uint8Array(rowBytes);
    const fd = this.fd(ref.index.file);
    ids.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) throw new LoraDropError("TOKEN_OUT_OF_RANGE", `token id ${id} is outside the vocabulary (0–${cfg.vocabSize - 1})`);
      readAt(fd, raw, rowBytes, ref.index.dataStart + ref.entry.begin + id * rowBytes, ref.index.file, "model.embed_tokens.weight");
      convertToF32(raw, ref.entry.dtype, out.subarray(t * H, (t + 1) * H));
    });
    return out;
  }

  /** Drops the buffers and closes the files. */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    this.buffers.clear();
    this.scratch = new Uint8Array(0);
  }
}
