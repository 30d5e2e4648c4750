/**
 * A disk cache of quantized weights, so that a second run over the same model starts without re-quantizing.
 *
 * One cache file per (source safetensors file, tensor selection, quantization spec). It is itself a safetensors
 * file, so the engine can hand its byte ranges to onnxruntime as external data exactly as it does the model's
 * shards (hard-linked beside the graph and memory-mapped): per weight `<name>.scales` (F32 [N, kBlocks]),
 * `<name>.qweight` (U8 [N, kBlocks, blob]) and, asymmetric only, `<name>.zero_points` (U8 [N, zpBytes]); all
 * scales come first so every float32 tensor starts 4-byte aligned. Its `__metadata__` holds the key it was built
 * for: the source's resolved path, size, mtime and inode, each tensor's name, dtype and shape, the bits, block
 * size and symmetry, and the format version. A lookup whose key differs in anything is a miss; the file is
 * rebuilt and the entries of the same source and spec with an older key are removed. Files are written under a
 * temporary name and renamed, so a killed writer never leaves a half file under a cache name.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { CancelledError, ErrorCode, LoraDropError, throwIfCancelled } from "../util/errors";
import { readSafetensorsIndex, SafetensorsIndex } from "../io/safetensors";
import { removeStaleTemps } from "../io/atomicWrite";
import { QuantLayout, QuantSpec, quantLayout } from "./blockQuant";
import { QuantJob, quantizeInto, writeAt } from "./quantJobs";

/** Bumped whenever the bytes a given key produces change (quantization rule, layout, naming). */
export const QUANT_CACHE_FORMAT = 2;
const META_KEY = "lora_drop.quant";

/** Tensors of one safetensors file to quantize. Each must be a 2-D F32/F16/BF16 [out, in] weight. */
export interface QuantSource {
  file: string;
  tensors: string[];
  /** The tensors are stored [in, out] (GPT-2's Conv1D) and are quantized as their transpose. */
  transposed?: boolean;
}

/** A byte range inside the cache file. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Where one quantized weight's parts lie in its cache file. */
export interface QuantizedTensorRef extends QuantLayout {
  name: string;
  spec: QuantSpec;
  file: string;
  scales: ByteRange;
  qweight: ByteRange;
  zeroPoints?: ByteRange;
}

/** A cache lookup's result. */
export interface QuantCacheResult {
  file: string;
  /** Whether the file was already there (false: it was just built). */
  hit: boolean;
  tensors: Map<string, QuantizedTensorRef>;
}

/** Options of a lookup. */
export interface QuantCacheOptions {
  cacheDir: string;
  signal?: AbortSignal;
  log?: (msg: string) => void;
  /** Threads that quantize on a miss (default: one per CPU); 1 quantizes on the calling thread. */
  threads?: number;
}

/** The cache folder used when none is given: $LORA_DROP_CACHE, else the XDG cache folder, under `quant/`. */
export function defaultQuantCacheDir(): string {
  const root = process.env.LORA_DROP_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "lora-drop");
  return path.join(root, "quant");
}

/** The cache key of a source and spec (a JSON string) and the file name it maps to. */
export function quantCacheKey(source: QuantSource, spec: QuantSpec, index = readSafetensorsIndex(source.file)): { key: string; fileName: string } {
  const real = fs.realpathSync(source.file);
  const st = fs.statSync(real);
  const tensors = source.tensors.map((name) => {
    const t = index.tensors.get(name);
    if (!t) throw new LoraDropError("TENSOR_MISSING", `tensor ${name} not found`, source.file, name);
    if (t.shape.length !== 2) throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `tensor ${name} has shape [${t.shape}]; only 2-D weights are quantized`, source.file, name);
    return { name, dtype: t.dtype, shape: t.shape };
  });
  const key = JSON.stringify({
    format: QUANT_CACHE_FORMAT, path: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino,
    bits: spec.bits, blockSize: spec.blockSize, symmetric: spec.symmetric, rangeSearch: spec.rangeSearch === true, transposed: source.transposed === true, tensors,
  });
  return { key, fileName: `${cachePrefix(real, spec, source.transposed === true)}${digest(key, 16)}.safetensors` };
}

/**
 * Returns the quantized weights of `source` from the cache, building the cache file first on a miss. Throws
 * WRITE_FAILED (naming the cache folder) when it cannot be written, CANCELLED when `signal` fires.
 */
export async function ensureQuantized(source: QuantSource, spec: QuantSpec, opts: QuantCacheOptions): Promise<QuantCacheResult> {
  const index = readSafetensorsIndex(source.file);
  const { key, fileName } = quantCacheKey(source, spec, index);
  const file = path.join(opts.cacheDir, fileName);
  const plan = planLayout(index, source, spec);
  const have = readEntry(file, key, plan);
  if (have) return { file, hit: true, tensors: have };
  try {
    fs.mkdirSync(opts.cacheDir, { recursive: true });
  } catch (e) {
    throw new LoraDropError("WRITE_FAILED", `cannot create the quantized-weight cache folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, opts.cacheDir);
  }
  removeStaleTemps(file);
  const started = Date.now();
  throwIfCancelled(opts.signal, "quantization");
  const tensors = await writeEntry(file, key, index, plan, spec, source.transposed === true, opts);
  removeOlderEntries(opts.cacheDir, fileName);
  opts.log?.(`quantized ${source.tensors.length} tensors of ${source.file} to ${spec.bits} bits in ${((Date.now() - started) / 1000).toFixed(1)} s → ${file}`);
  return { file, hit: false, tensors };
}

/** The parts of each tensor, in file order: all scales, then codes and zero points. */
function planLayout(index: SafetensorsIndex, source: QuantSource, spec: QuantSpec): { header: Record<string, unknown>; refs: Omit<QuantizedTensorRef, "file">[] } {
  const layouts = source.tensors.map((name) => {
    const [rows, cols] = index.tensors.get(name)!.shape as [number, number];
    return { name, l: source.transposed ? quantLayout(cols, rows, spec) : quantLayout(rows, cols, spec) };
  });
  const header: Record<string, unknown> = Object.create(null);
  let at = 0;
  const place = (name: string, dtype: string, shape: number[], bytes: number): ByteRange => {
    header[name] = { dtype, shape, data_offsets: [at, at + bytes] };
    const r = { offset: at, length: bytes };
    at += bytes;
    return r;
  };
  const scales = layouts.map(({ name, l }) => place(`${name}.scales`, "F32", [l.rows, l.kBlocks], 4 * l.rows * l.kBlocks));
  const refs = layouts.map(({ name, l }, i) => ({
    ...l, name, spec, scales: scales[i]!,
    qweight: place(`${name}.qweight`, "U8", [l.rows, l.kBlocks, l.blobBytes], l.rows * l.kBlocks * l.blobBytes),
    ...(l.zeroPointBytes ? { zeroPoints: place(`${name}.zero_points`, "U8", [l.rows, l.zeroPointBytes], l.rows * l.zeroPointBytes) } : {}),
  }));
  return { header, refs };
}

async function writeEntry(file: string, key: string, index: SafetensorsIndex, plan: ReturnType<typeof planLayout>, spec: QuantSpec, transposed: boolean, opts: QuantCacheOptions): Promise<Map<string, QuantizedTensorRef>> {
  const { refs } = plan;
  const header = { ...plan.header, __metadata__: { [META_KEY]: key } };
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headBytes = Buffer.from(json, "utf8");
  const dataStart = 8 + headBytes.length;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  const fail = (e: unknown) => new LoraDropError("WRITE_FAILED", `cannot write the quantized-weight cache (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, opts.cacheDir);
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(headBytes.length));
      writeAt(fd, len, 0);
      writeAt(fd, headBytes, 8);
    } finally {
      fs.closeSync(fd);
    }
    const jobs: QuantJob[] = refs.map((r) => ({
      index, name: r.name, spec, transposed, target: tmp, scalesAt: dataStart + r.scales.offset, qweightAt: dataStart + r.qweight.offset,
      ...(r.zeroPoints ? { zeroPointsAt: dataStart + r.zeroPoints.offset } : {}),
    }));
    await runJobs(jobs, opts);
    const fd2 = fs.openSync(tmp, "r+");
    try { fs.fsyncSync(fd2); } finally { fs.closeSync(fd2); }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e instanceof LoraDropError ? e : fail(e);
  }
  return new Map(refs.map((r) => [r.name, absolute(r, file, dataStart)]));
}

/**
 * Runs the jobs on `threads` threads: inline when one, else in workers, each given a share of about equal bytes
 * (largest first). Quantization is CPU-bound, so it scales with the cores while reads come from the page cache.
 */
async function runJobs(jobs: QuantJob[], opts: QuantCacheOptions): Promise<void> {
  const threads = Math.max(1, Math.min(opts.threads ?? os.cpus().length, jobs.length));
  if (threads === 1) {
    for (const job of jobs) {
      throwIfCancelled(opts.signal, "quantization");
      quantizeInto(job);
    }
    return;
  }
  const size = (j: QuantJob) => { const t = j.index.tensors.get(j.name)!; return t.end - t.begin; };
  const shares: QuantJob[][] = Array.from({ length: threads }, () => []);
  const load = new Array<number>(threads).fill(0);
  for (const job of [...jobs].sort((a, b) => size(b) - size(a))) {
    const i = load.indexOf(Math.min(...load));
    shares[i]!.push(job);
    load[i]! += size(job);
  }
  const workers = shares.map((share) => new Worker(path.join(__dirname, "quantWorker.js"), { workerData: { jobs: share } }));
  const stop = () => { for (const w of workers) void w.terminate(); };
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
      w.on("message", (m: { finished?: boolean; error?: { code?: string; message: string; field?: string } }) => {
        if (m.finished) resolve();
        if (m.error) reject(m.error.code ? new LoraDropError(m.error.code as ErrorCode, m.error.message, undefined, m.error.field) : new Error(m.error.message));
      });
      w.on("error", reject);
      w.on("exit", (code) => (opts.signal?.aborted ? reject(new CancelledError("quantization")) : code !== 0 ? reject(new Error(`quantization worker exited with ${code}`)) : resolve()));
    })));
  } catch (e) {
    stop();
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", stop);
  }
}

/** The entry's tensors when `file` exists, was built for exactly `key` and holds the planned parts. */
function readEntry(file: string, key: string, plan: ReturnType<typeof planLayout>): Map<string, QuantizedTensorRef> | undefined {
  if (!fs.existsSync(file)) return undefined;
  let idx: SafetensorsIndex;
  try {
    idx = readSafetensorsIndex(file);
  } catch {
    return undefined;
  }
  if (idx.metadata[META_KEY] !== key) return undefined;
  for (const [name, want] of Object.entries(plan.header)) {
    const t = idx.tensors.get(name);
    const w = want as { shape: number[]; data_offsets: [number, number] };
    if (!t || t.begin !== w.data_offsets[0] || t.end !== w.data_offsets[1] || t.shape.join() !== w.shape.join()) return undefined;
  }
  return new Map(plan.refs.map((r) => [r.name, absolute(r, file, idx.dataStart)]));
}

function absolute(r: Omit<QuantizedTensorRef, "file">, file: string, dataStart: number): QuantizedTensorRef {
  const shift = (b: ByteRange): ByteRange => ({ offset: dataStart + b.offset, length: b.length });
  return { ...r, file, scales: shift(r.scales), qweight: shift(r.qweight), ...(r.zeroPoints ? { zeroPoints: shift(r.zeroPoints) } : {}) };
}

/** File names of one source and spec share this prefix; only the key digest after it differs. */
function cachePrefix(realPath: string, spec: QuantSpec, transposed: boolean): string {
  const stem = path.basename(realPath).replace(/\.safetensors$/, "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 60);
  return `${stem}-${digest(realPath, 8)}-q${spec.bits}b${spec.blockSize}${spec.symmetric ? "s" : "a"}${spec.rangeSearch ? "m" : ""}${transposed ? "t" : ""}-`;
}

/** Removes entries with the same prefix as `keep` but another key: built from an older version of the source. */
function removeOlderEntries(dir: string, keep: string): void {
  const prefix = keep.slice(0, keep.length - "0123456789abcdef.safetensors".length);
  for (const name of fs.readdirSync(dir)) {
    if (name !== keep && name.startsWith(prefix) && name.endsWith(".safetensors")) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function digest(s: string, chars: number): string {
  return crypto.createHash("sha256").update(s).digest("hex").slice(0, chars);
}
