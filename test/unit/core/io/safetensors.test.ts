/**
 * safetensors: seeded round trips in every float dtype, and one test per validation error code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, halfToFloat, floatToHalf, floatToBf16 } from "../../../../extension/core/io/safetensors";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { Rng, normalArray } from "../../../../extension/core/util/random";
import { tmpDir } from "../../../helpers";

const dir = tmpDir();

function writeRaw(name: string, header: unknown, dataBytes: number, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

function expectCode(fn: () => unknown, code: string, file: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LoraDropError, `expected LoraDropError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    return true;
  });
}

test("round trip: F32 exactly, F16 and BF16 within their rounding", () => {
  const rng = new Rng(7);
  const a = normalArray(rng, 6 * 5, 3);
  const file = path.join(dir, "rt.safetensors");
  fs.writeFileSync(file, encodeSafetensors([
    { name: "x.f32", dtype: "F32", shape: [6, 5], data: a },
    { name: "x.f16", dtype: "F16", shape: [30], data: a },
    { name: "x.bf16", dtype: "BF16", shape: [5, 6], data: a },
  ], { note: "hi" }));
  const idx = readSafetensorsIndex(file);
  assert.equal(idx.metadata.note, "hi");
  assert.equal((idx.dataStart - 8) % 8, 0, "header padded to 8 bytes");
  assert.deepEqual(readTensorF32(idx, "x.f32").data, a);
  assert.deepEqual(readTensorF32(idx, "x.bf16").shape, [5, 6]);
  const f16 = readTensorF32(idx, "x.f16").data;
  const bf16 = readTensorF32(idx, "x.bf16").data;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(f16[i]! - a[i]!) <= Math.abs(a[i]!) * 2 ** -11 + 2 ** -24, `f16 ${f16[i]} vs ${a[i]}`);
    assert.ok(Math.abs(bf16[i]! - a[i]!) <= Math.abs(a[i]!) * 2 ** -8, `bf16 ${bf16[i]} vs ${a[i]}`);
  }
});

test("half and bfloat16 conversions agree on exactly representable values", () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, -3.25]) {
    assert.equal(halfToFloat(floatToHalf(v)), v);
  }
  assert.equal(floatToHalf(1e6), 0x7c00, "overflow rounds to +Inf");
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(-2), 0xc000);
});

test("a file shorter than 8 bytes is truncated", () => {
  const file = path.join(dir, "short.safetensors");
  fs.writeFileSync(file, Buffer.alloc(5));
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_TRUNCATED", file);
});

test("a header length past the end of the file is truncated", () => {
  const file = path.join(dir, "past.safetensors");
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(1000n);
  fs.writeFileSync(file, b);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_TRUNCATED", file);
});

test("an absurd header length is refused before any allocation", () => {
  const file = path.join(dir, "huge.safetensors");
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(2n ** 40n);
  fs.writeFileSync(file, b);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_HEADER_TOO_LARGE", file);
});

test("a header that is not JSON", () => {
  const file = writeRaw("nojson.safetensors", null, 0, "{not json");
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_HEADER_INVALID", file);
});

test("an unknown dtype", () => {
  const file = writeRaw("dtype.safetensors", { t: { dtype: "F8_E9", shape: [2], data_offsets: [0, 2] } }, 2);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_BAD_DTYPE", file);
});

test("offsets that leave a gap", () => {
  const file = writeRaw("gap.safetensors", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, 12);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_BAD_OFFSETS", file);
});

test("data_offsets past the data are truncation", () => {
  const file = writeRaw("oob.safetensors", { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_TRUNCATED", file);
});

test("a shape whose byte count disagrees with its offsets", () => {
  const file = writeRaw("shape.safetensors", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8);
  expectCode(() => readSafetensorsIndex(file), "SAFETENSORS_SHAPE_MISMATCH", file);
});

test("a missing tensor is named", () => {
  const file = path.join(dir, "one.safetensors");
  fs.writeFileSync(file, encodeSafetensors([{ name: "a", dtype: "F32", shape: [1], data: Float32Array.of(1) }]));
  const idx = readSafetensorsIndex(file);
  expectCode(() => readTensorF32(idx, "b"), "TENSOR_MISSING", file);
});
