/**
 * onnxruntime's MatMulNBits on weights quantized by blockQuant.ts: its output must equal the float64 product of the
 * input with the DEquantized weight (accuracy_level 0 computes in fp32), which holds only if codes, nibble order,
 * scales and zero points are laid out as the operator reads them. Checked for 4 and 8 bits, symmetric and
 * asymmetric, a K that leaves a partial block, with the weight as graph constants and as external data in a
 * quantized-weight cache file. accuracy_level 4 (int8 activations) is checked against the same product within
 * the error of quantizing the input to 8 bits per block.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as fs from "node:fs";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { createSession, f32Tensor } from "../../../extension/core/runtime/session";
import { BlockQuantized, dequantize, quantizeMatrix, QuantSpec } from "../../../extension/core/quant/blockQuant";
import { AccuracyLevel, matMulNBits, quantizedConstants, quantizedExternal } from "../../../extension/core/quant/quantLinear";
import { ensureQuantized } from "../../../extension/core/quant/quantCache";
import { encodeSafetensors, floatToHalf, halfToFloat } from "../../../extension/core/io/safetensors";
import { shardLocation } from "../../../extension/core/models/weights";
import { Rng, normalArray } from "../../../extension/core/util/random";
import { tmpDir } from "../../helpers";

const M = 6;

/** max |y − x·Dᵀ| over max |x·Dᵀ|, the product computed in float64. */
function relErrVsDequantized(x: Float32Array, q: BlockQuantized, y: Float32Array): number {
  const d = dequantize(q);
  const K = q.cols, N = q.rows;
  let err = 0, scale = 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[i * K + k]! * d[j * K + k]!;
      scale = Math.max(scale, Math.abs(s));
      err = Math.max(err, Math.abs(y[i * N + j]! - s));
    }
  }
  return err / scale;
}

async function run(g: GraphBuilder, x: Float32Array, K: number, shardFiles: string[] = []): Promise<Float32Array> {
  const { session } = await createSession(g.toBytes(), { device: "cpu", shardFiles, threads: 1 });
  try {
    const out = await session.run({ x: f32Tensor(x, [M, K]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function constantProduct(x: Float32Array, q: BlockQuantized, acc: AccuracyLevel): Promise<Float32Array> {
  const g = new GraphBuilder();
  const xin = g.input("x", "float32", [M, q.cols]);
  g.output(matMulNBits(g, xin, quantizedConstants(g, q), acc));
  return run(g, x, q.cols);
}

test("MatMulNBits (fp32 compute) equals the product with the dequantized weight to 1e-5", async () => {
  const rng = new Rng(21);
  for (const bits of [4, 8] as const) {
    for (const symmetric of [true, false]) {
      for (const [N, K, blockSize] of [[40, 256, 32], [24, 200, 64], [16, 300, 128]] as const) {
        const spec: QuantSpec = { bits, blockSize, symmetric };
        const q = quantizeMatrix(normalArray(rng, N * K, 0.02), N, K, spec);
        const x = normalArray(rng, M * K, 1);
        const err = relErrVsDequantized(x, q, await constantProduct(x, q, 0));
        assert.ok(err < 1e-5, `${JSON.stringify(spec)} [${N},${K}]: rel err ${err.toExponential(2)}`);
      }
    }
  }
});

test("MatMulNBits with int8 compute (accuracy_level 4) stays within 8-bit activation rounding", async () => {
  const rng = new Rng(22);
  for (const bits of [4, 8] as const) {
    const q = quantizeMatrix(normalArray(rng, 32 * 256, 0.02), 32, 256, { bits, blockSize: 32, symmetric: bits === 4 });
    const x = normalArray(rng, M * 256, 1);
    const err = relErrVsDequantized(x, q, await constantProduct(x, q, 4));
    // Each activation block is rounded to 1/127 of its largest value: a relative error of a few 1e-3 on the sum.
    assert.ok(err > 1e-5 && err < 2e-2, `${bits} bits: rel err ${err.toExponential(2)} (int8 compute is not fp32)`);
  }
});

test("a cached weight used as external data gives the same output as the constants", async () => {
  const dir = tmpDir();
  const rng = new Rng(23);
  const N = 48, K = 160;
  const w = normalArray(rng, N * K, 0.02);
  const source = path.join(dir, "model.safetensors");
  fs.writeFileSync(source, encodeSafetensors([{ name: "proj.weight", dtype: "F16", shape: [N, K], data: w }]));
  for (const spec of [{ bits: 4, blockSize: 32, symmetric: false }, { bits: 8, blockSize: 32, symmetric: true }] as QuantSpec[]) {
    const cached = await ensureQuantized({ file: source, tensors: ["proj.weight"] }, spec, { cacheDir: path.join(dir, "cache"), threads: 1 });
    const g = new GraphBuilder();
    const xin = g.input("x", "float32", [M, K]);
    g.output(matMulNBits(g, xin, quantizedExternal(g, cached.tensors.get("proj.weight")!, shardLocation(0)), 0));
    const x = normalArray(rng, M * K, 1);
    const viaCache = await run(g, x, K, [cached.file]);
    // The same quantization from the same F16 bytes, as constants.
    const q = quantizeMatrix(Float32Array.from(w, (v) => halfToFloat(floatToHalf(v))), N, K, spec);
    assert.deepEqual(viaCache, await constantProduct(x, q, 0), JSON.stringify(spec));
    assert.ok(relErrVsDequantized(x, q, viaCache) < 1e-5);
  }
});
