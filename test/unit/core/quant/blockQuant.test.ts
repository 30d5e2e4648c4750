/**
 * Block-wise quantization in MatMulNBits's layout: hand-checked codes and packing, the format's error bound on
 * seeded weights (4 and 8 bits, symmetric and asymmetric, blocks that K fills and one it does not), F16/BF16
 * sources, the range search of asymmetric blocks, and the refusals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockQuantized, dequantize, quantErrorBound, quantizeMatrix, quantizeStored, QuantSpec, quantLayout, RANGE_FACTORS } from "../../../../extension/core/quant/blockQuant";
import { encodeSafetensors, floatToBf16, floatToHalf, halfToFloat } from "../../../../extension/core/io/safetensors";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { Rng, normalArray } from "../../../../extension/core/util/random";

const SPECS: QuantSpec[] = [4, 8].flatMap((bits) => [16, 32, 128].flatMap((blockSize) =>
  [true, false].map((symmetric) => ({ bits: bits as 4 | 8, blockSize, symmetric }))));

/** Largest error over bound, per element, with the bound of the element's own block. */
function worstRatio(w: Float32Array, q: BlockQuantized): number {
  const d = dequantize(q);
  let worst = 0;
  for (let r = 0; r < q.rows; r++) {
    for (let k = 0; k < q.cols; k++) {
      const scale = q.scales[r * q.kBlocks + Math.floor(k / q.spec.blockSize)]!;
      const err = Math.abs(d[r * q.cols + k]! - w[r * q.cols + k]!);
      // float32 rounding of the dequantized value itself: a few ulps of the weight.
      const bound = quantErrorBound(q.spec, scale) + 4e-7 * Math.abs(w[r * q.cols + k]!) + 1e-30;
      worst = Math.max(worst, err / bound);
    }
  }
  return worst;
}

test("layout sizes follow the operator: blob = block·bits/8, zero points packed per row", () => {
  assert.deepEqual(quantLayout(5632, 2048, { bits: 4, blockSize: 32, symmetric: false }), { rows: 5632, cols: 2048, kBlocks: 64, blobBytes: 16, zeroPointBytes: 32 });
  assert.deepEqual(quantLayout(10, 200, { bits: 4, blockSize: 64, symmetric: false }), { rows: 10, cols: 200, kBlocks: 4, blobBytes: 32, zeroPointBytes: 2 });
  assert.deepEqual(quantLayout(10, 200, { bits: 8, blockSize: 128, symmetric: true }), { rows: 10, cols: 200, kBlocks: 2, blobBytes: 128, zeroPointBytes: 0 });
});

test("4-bit symmetric codes by hand: the largest magnitude maps to code 0, nibbles low first", () => {
  // One block of 16: values k·0.25 for k = -8…7, so the signed extreme is -2 and the scale -2/-8 = 0.25.
  const w = Float32Array.from({ length: 16 }, (_, i) => (i - 8) * 0.25);
  const q = quantizeMatrix(w, 1, 16, { bits: 4, blockSize: 16, symmetric: true });
  assert.equal(q.scales[0], 0.25);
  // Codes are value/scale + 8 = 0…15; byte j = code[2j] | code[2j+1] << 4.
  assert.deepEqual(Array.from(q.data), [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
  assert.equal(q.zeroPoints, undefined);
  assert.deepEqual(Array.from(dequantize(q)), Array.from(w));
});

test("4-bit asymmetric codes by hand: range [min(w,0), max(w,0)], zero point packed low nibble first", () => {
  // Block 0 spans [0, 1.5] (scale 0.1, zero point 0); block 1 spans [-3, 0] (scale 0.2, zero point 15).
  const w = new Float32Array(32);
  for (let i = 0; i < 16; i++) { w[i] = i * 0.1; w[16 + i] = -i * 0.2; }
  const q = quantizeMatrix(w, 1, 32, { bits: 4, blockSize: 16, symmetric: false });
  assert.ok(Math.abs(q.scales[0]! - 0.1) < 1e-7 && Math.abs(q.scales[1]! - 0.2) < 1e-7);
  assert.deepEqual(Array.from(q.zeroPoints!), [0xf0]);
  assert.equal(q.data[0], 0x10);
  assert.equal(q.data[8], 0xef, "codes 15 - 0 and 15 - 1 for 0 and -0.2");
  const d = dequantize(q);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(d[i]! - w[i]!) < 1e-6, `${i}: ${d[i]} vs ${w[i]}`);
});

test("8-bit: one byte per code; the default zero point 128 for symmetric blocks", () => {
  const w = Float32Array.from({ length: 16 }, (_, i) => (i === 3 ? -1.28 : i * 0.01));
  const q = quantizeMatrix(w, 1, 16, { bits: 8, blockSize: 16, symmetric: true });
  assert.ok(Math.abs(q.scales[0]! - 0.01) < 1e-9);
  assert.equal(q.data[3], 0);
  assert.equal(q.data[5], 133);
  assert.equal(q.data.length, 16);
});

test("dequantize(quantize(W)) stays within the format's bound for every spec, with a partial last block", () => {
  const rng = new Rng(11);
  for (const spec of SPECS) {
    for (const [rows, cols] of [[7, 256], [5, 200]] as const) {
      const w = normalArray(rng, rows * cols, 0.02);
      // A few large values, like the outlier weights of trained models.
      for (let i = 0; i < 6; i++) w[rng.int(w.length)] = (rng.normal() > 0 ? 1 : -1) * 0.3;
      const q = quantizeMatrix(w, rows, cols, spec);
      const ratio = worstRatio(w, q);
      assert.ok(ratio <= 1, `${JSON.stringify(spec)} [${rows},${cols}]: error ${ratio.toFixed(3)} × bound`);
    }
  }
});

test("4-bit error is about 1/16 of the block range, 8-bit about 1/256: measured, not just bounded", () => {
  const rng = new Rng(5);
  const w = normalArray(rng, 64 * 512, 1);
  const rms = (spec: QuantSpec) => {
    const d = dequantize(quantizeMatrix(w, 64, 512, spec));
    let s = 0;
    for (let i = 0; i < w.length; i++) s += (d[i]! - w[i]!) ** 2;
    return Math.sqrt(s / w.length);
  };
  // Uniform rounding error has rms step/√12; a block of 32 normals spans ~±2.1σ, so step ≈ 4.2/15 and 4.2/255.
  const e4 = rms({ bits: 4, blockSize: 32, symmetric: false });
  const e8 = rms({ bits: 8, blockSize: 32, symmetric: false });
  assert.ok(e4 > 0.06 && e4 < 0.1, `4-bit rms error ${e4}`);
  assert.ok(e8 > 0.004 && e8 < 0.006, `8-bit rms error ${e8}`);
  assert.ok(e4 / e8 > 14 && e4 / e8 < 20, `ratio ${e4 / e8}`);
});

/** Sum of squared errors of each block of a quantized [rows, cols] matrix against w. */
function blockErrors(w: Float32Array, q: BlockQuantized): number[] {
  const d = dequantize(q);
  const out = new Array(q.rows * q.kBlocks).fill(0);
  for (let r = 0; r < q.rows; r++) {
    for (let k = 0; k < q.cols; k++) out[r * q.kBlocks + Math.floor(k / q.spec.blockSize)] += (d[r * q.cols + k]! - w[r * q.cols + k]!) ** 2;
  }
  return out;
}

test("range search: no block's squared error above the min–max range's, the total below it at 4 bits", () => {
  const rng = new Rng(17);
  for (const [bits, blockSize] of [[4, 128], [4, 32], [8, 64]] as const) {
    const rows = 48, cols = 320; // 320 = 2.5 blocks of 128: a partial last block too
    const w = normalArray(rng, rows * cols, 0.02);
    for (let i = 0; i < 20; i++) w[rng.int(w.length)] = (rng.normal() > 0 ? 1 : -1) * 0.12;
    const plain = quantizeMatrix(w, rows, cols, { bits, blockSize, symmetric: false });
    const searched = quantizeMatrix(w, rows, cols, { bits, blockSize, symmetric: false, rangeSearch: true });
    const a = blockErrors(w, plain), b = blockErrors(w, searched);
    // The whole range is the first candidate, so a block keeps it unless a shrunk one is strictly better
    // (float32 rounding of the dequantized values allowed for).
    b.forEach((e, i) => assert.ok(e <= a[i]! * (1 + 1e-6) + 1e-30, `block ${i}: ${e} > ${a[i]}`));
    const total = (x: number[]) => x.reduce((s, v) => s + v, 0);
    const gain = total(b) / total(a);
    // Normal weights: clipping pays at 4 bits in blocks of 128 (measured ≈ 0.90), less in smaller blocks.
    if (bits === 4 && blockSize === 128) assert.ok(gain < 0.95, `4-bit block ${blockSize}: searched/min-max squared error ${gain.toFixed(3)}`);
    else assert.ok(gain <= 1, `8-bit: ${gain}`);
    // At 4 bits some block was clipped (its scale is below the min–max one); at 8 bits the steps are too fine.
    if (bits === 4) assert.ok(searched.scales.some((s, i) => s < plain.scales[i]! * (1 - 1e-6)), "some range was shrunk");
    const d = dequantize(searched);
    assert.ok(d.every((v) => Number.isFinite(v)));
  }
});

test("range search: weights outside a shrunk range dequantize to its nearest end, never wrap around", () => {
  const rng = new Rng(23);
  const rows = 32, cols = 256, bs = 64;
  const w = normalArray(rng, rows * cols, 1);
  const q = quantizeMatrix(w, rows, cols, { bits: 4, blockSize: bs, symmetric: false, rangeSearch: true });
  const plain = quantizeMatrix(w, rows, cols, { bits: 4, blockSize: bs, symmetric: false });
  const d = dequantize(q);
  let clipped = 0, shrunk = 0;
  for (let blk = 0; blk < rows * q.kBlocks; blk++) {
    const scale = q.scales[blk]!;
    if (scale >= plain.scales[blk]! * (1 - 1e-6)) continue;
    shrunk++;
    const zp = (q.zeroPoints![(Math.floor(blk / q.kBlocks) * q.zeroPointBytes) + ((blk % q.kBlocks) >> 1)]! >> (4 * (blk & 1))) & 0xf;
    const low = -zp * scale, high = (15 - zp) * scale;
    const r = Math.floor(blk / q.kBlocks), b = blk % q.kBlocks;
    for (let k = b * bs; k < (b + 1) * bs; k++) {
      const x = w[r * cols + k]!, y = d[r * cols + k]!;
      if (x < low - scale / 2) { clipped++; assert.ok(Math.abs(y - low) < 1e-6, `${x} → ${y}, low end ${low}`); }
      if (x > high + scale / 2) { clipped++; assert.ok(Math.abs(y - high) < 1e-6, `${x} → ${y}, high end ${high}`); }
    }
  }
  assert.equal(RANGE_FACTORS[0], 1);
  assert.ok(shrunk > 0 && clipped > 0, `${shrunk} blocks shrunk, ${clipped} weights clipped`);
});

test("range search is refused for symmetric blocks", () => {
  assert.throws(() => quantizeMatrix(new Float32Array(32), 1, 32, { bits: 4, blockSize: 32, symmetric: true, rangeSearch: true }),
    (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT");
});

test("stored F16 and BF16 weights quantize as their float32 values do", () => {
  const rng = new Rng(3);
  const rows = 40, cols = 96;
  const w = normalArray(rng, rows * cols, 0.05);
  const spec: QuantSpec = { bits: 4, blockSize: 32, symmetric: false };
  for (const dtype of ["F16", "BF16", "F32"] as const) {
    const file = encodeSafetensors([{ name: "w", dtype, shape: [rows, cols], data: w }]);
    const dataStart = 8 + Number(file.readBigUInt64LE(0));
    const stored = file.subarray(dataStart);
    const asF32 = Float32Array.from(w, (x) => dtype === "F16" ? halfToFloat(floatToHalf(x)) : dtype === "BF16" ? bf16ToFloat(floatToBf16(x)) : x);
    const a = quantizeStored(stored, dtype, rows, cols, spec);
    const b = quantizeMatrix(asF32, rows, cols, spec);
    assert.deepEqual(a.data, b.data, dtype);
    assert.deepEqual(a.scales, b.scales, dtype);
    assert.deepEqual(a.zeroPoints, b.zeroPoints, dtype);
  }
});

test("an all-zero block has scale 0 and dequantizes to zeros", () => {
  for (const symmetric of [true, false]) {
    const q = quantizeMatrix(new Float32Array(64), 2, 32, { bits: 4, blockSize: 32, symmetric });
    assert.deepEqual(Array.from(q.scales), [0, 0]);
    assert.ok(dequantize(q).every((x) => x === 0));
  }
});

test("NaN or Inf weights, bad specs and byte counts are refused with typed errors", () => {
  const w = new Float32Array(64);
  w[40] = NaN;
  assert.throws(() => quantizeMatrix(w, 2, 32, { bits: 4, blockSize: 32, symmetric: true }, "layer.w"),
    (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL" && /row 1, block 0/.test(e.message) && /layer\.w/.test(e.message));
  w[40] = Infinity;
  assert.throws(() => quantizeMatrix(w, 2, 32, { bits: 8, blockSize: 32, symmetric: false }), (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL");
  assert.throws(() => quantizeMatrix(new Float32Array(64), 2, 32, { bits: 4, blockSize: 24, symmetric: true }), (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT");
  assert.throws(() => quantizeMatrix(new Float32Array(64), 2, 32, { bits: 3 as 4, blockSize: 32, symmetric: true }), (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT");
  assert.throws(() => quantizeStored(new Uint8Array(10), "F32", 2, 32, { bits: 4, blockSize: 32, symmetric: true }), (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT");
  assert.throws(() => quantizeStored(new Uint8Array(64), "I8", 2, 32, { bits: 4, blockSize: 32, symmetric: true }), (e: unknown) => e instanceof LoraDropError && e.code === "SAFETENSORS_BAD_DTYPE");
});

function bf16ToFloat(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
}
