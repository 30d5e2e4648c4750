/**
 * The quantized-weight cache: a miss builds a safetensors file whose parts equal quantizing the source directly,
 * a second lookup hits without rewriting, and a changed source, another spec or a damaged entry is rebuilt
 * (the outdated entry of the same source removed). Both the inline and the worker-thread builders are checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeSafetensors, readSafetensorsIndex, readTensorBytes } from "../../../../extension/core/io/safetensors";
import { ensureQuantized, QuantizedTensorRef } from "../../../../extension/core/quant/quantCache";
import { quantizeStored, QuantSpec } from "../../../../extension/core/quant/blockQuant";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { Rng, normalArray } from "../../../../extension/core/util/random";
import { tmpDir } from "../../../helpers";

const dir = tmpDir();
const SPEC: QuantSpec = { bits: 4, blockSize: 32, symmetric: false };
const NAMES = ["layers.0.q.weight", "layers.0.down.weight"];

function writeSource(file: string, seed: number): void {
  const rng = new Rng(seed);
  fs.writeFileSync(file, encodeSafetensors([
    { name: NAMES[0]!, dtype: "BF16", shape: [48, 64], data: normalArray(rng, 48 * 64, 0.02) },
    { name: NAMES[1]!, dtype: "F32", shape: [64, 80], data: normalArray(rng, 64 * 80, 0.02) },
    { name: "norm.weight", dtype: "F32", shape: [64], data: new Float32Array(64).fill(1) },
  ]));
}

/** Checks each cached part against quantizing the source tensor directly. */
function assertMatchesSource(source: string, refs: Map<string, QuantizedTensorRef>, spec: QuantSpec): void {
  const idx = readSafetensorsIndex(source);
  for (const name of NAMES) {
    const t = idx.tensors.get(name)!;
    const want = quantizeStored(readTensorBytes(idx, name), t.dtype, t.shape[0]!, t.shape[1]!, spec);
    const ref = refs.get(name)!;
    const cached = fs.readFileSync(ref.file);
    const part = (r: { offset: number; length: number }) => cached.subarray(r.offset, r.offset + r.length);
    assert.deepEqual(new Uint8Array(part(ref.qweight)), want.data, `${name} codes`);
    assert.deepEqual(new Float32Array(part(ref.scales).buffer.slice(part(ref.scales).byteOffset, part(ref.scales).byteOffset + ref.scales.length)), want.scales, `${name} scales`);
    assert.equal(ref.scales.offset % 4, 0, "float32 scales start aligned");
    if (want.zeroPoints) assert.deepEqual(new Uint8Array(part(ref.zeroPoints!)), want.zeroPoints, `${name} zero points`);
    assert.deepEqual([ref.rows, ref.cols, ref.kBlocks], [t.shape[0], t.shape[1], Math.ceil(t.shape[1]! / spec.blockSize)]);
  }
}

for (const threads of [1, 2]) {
  test(`miss builds, hit reuses, a changed source rebuilds (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
    const source = path.join(dir, `model-${threads}.safetensors`);
    const cacheDir = path.join(dir, `cache-${threads}`);
    writeSource(source, 1);
    const first = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads });
    assert.equal(first.hit, false);
    assertMatchesSource(source, first.tensors, SPEC);
    const stamp = fs.statSync(first.file).mtimeMs;

    const second = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads });
    assert.equal(second.hit, true);
    assert.equal(second.file, first.file);
    assert.equal(fs.statSync(second.file).mtimeMs, stamp, "a hit does not rewrite the file");
    assert.deepEqual([...second.tensors.values()], [...first.tensors.values()]);

    // New values of the same size: the mtime changes the key (set explicitly, file systems round mtimes).
    writeSource(source, 2);
    fs.utimesSync(source, new Date(), new Date(Date.now() + 5000));
    const third = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads });
    assert.equal(third.hit, false);
    assert.notEqual(third.file, first.file);
    assert.equal(fs.existsSync(first.file), false, "the outdated entry is removed");
    assertMatchesSource(source, third.tensors, SPEC);
    assert.deepEqual(fs.readdirSync(cacheDir), [path.basename(third.file)], "no temporaries left");
  });
}

test("another spec is another entry; both stay", async () => {
  const source = path.join(dir, "spec.safetensors");
  const cacheDir = path.join(dir, "cache-spec");
  writeSource(source, 3);
  const a = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads: 1 });
  const sym: QuantSpec = { bits: 8, blockSize: 64, symmetric: true };
  const b = await ensureQuantized({ file: source, tensors: NAMES }, sym, { cacheDir, threads: 1 });
  assert.equal(b.hit, false);
  assert.notEqual(a.file, b.file);
  assert.equal(b.tensors.get(NAMES[0]!)!.zeroPoints, undefined);
  assertMatchesSource(source, b.tensors, sym);
  assert.equal((await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads: 1 })).hit, true);
});

test("a damaged entry is rebuilt, not trusted", async () => {
  const source = path.join(dir, "damaged.safetensors");
  const cacheDir = path.join(dir, "cache-damaged");
  writeSource(source, 4);
  const a = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads: 1 });
  fs.truncateSync(a.file, fs.statSync(a.file).size - 10);
  const b = await ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, threads: 1 });
  assert.equal(b.hit, false);
  assertMatchesSource(source, b.tensors, SPEC);
});

test("refusals: a missing tensor, a 1-D tensor, an unwritable cache folder", async () => {
  const source = path.join(dir, "refuse.safetensors");
  writeSource(source, 5);
  const code = (c: string) => (e: unknown) => e instanceof LoraDropError && e.code === c;
  await assert.rejects(ensureQuantized({ file: source, tensors: ["nope"] }, SPEC, { cacheDir: path.join(dir, "c1") }), code("TENSOR_MISSING"));
  await assert.rejects(ensureQuantized({ file: source, tensors: ["norm.weight"] }, SPEC, { cacheDir: path.join(dir, "c1") }), code("SAFETENSORS_SHAPE_MISMATCH"));
  const blocker = path.join(dir, "a-file");
  fs.writeFileSync(blocker, "");
  await assert.rejects(ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir: path.join(blocker, "sub") }), code("WRITE_FAILED"));
});

test("cancelling before the build writes nothing", async () => {
  const source = path.join(dir, "cancel.safetensors");
  const cacheDir = path.join(dir, "cache-cancel");
  writeSource(source, 6);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(ensureQuantized({ file: source, tensors: NAMES }, SPEC, { cacheDir, signal: ac.signal, threads: 2 }), (e: unknown) => e instanceof LoraDropError && e.code === "CANCELLED");
  assert.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
});
