/**
 * Per-column int8 weights (scripts/bench/columnQuant.ts, kept for the operator measurements of quantSpeed.ts) in onnxruntime's integer matmuls. With activations that quantize
 * exactly (integers 0…255, so DynamicQuantizeLinear's scale is 1 and its zero point 0), DynamicQuantizeMatMul's
 * output must equal the product with the DEquantized weight up to float32 rounding, which holds only if the
 * transposed layout and the per-column scales are what the operator reads. Also: the round-trip bound.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { createSession, f32Tensor } from "../../../extension/core/runtime/session";
import { dequantizeColumns, quantizeColumns, quantizeColumnsStored } from "../../../scripts/bench/columnQuant";
import { encodeSafetensors, floatToBf16 } from "../../../extension/core/io/safetensors";
import { Rng, normalArray } from "../../../extension/core/util/random";

test("dequantizeColumns(quantizeColumns(W)) is within half a step of each column's scale", () => {
  const rng = new Rng(31);
  const N = 70, K = 90;
  const w = normalArray(rng, N * K, 0.02);
  w[5] = 0.4;
  const q = quantizeColumns(w, N, K);
  const d = dequantizeColumns(q);
  let worst = 0;
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) worst = Math.max(worst, Math.abs(d[n * K + k]! - w[n * K + k]!) / (q.scales[n]! / 2 + 1e-9 * Math.abs(w[n * K + k]!)));
  assert.ok(worst <= 1.0001, `error ${worst} × half a step`);
  assert.ok(Math.abs(q.scales[0]! - 0.4 / 127) < 1e-8);
  assert.equal(q.data[5 * N + 0], 127, "row 0's largest value lands on code 127 at [k=5, n=0]");
});

test("stored BF16 bytes quantize as their float32 values", () => {
  const rng = new Rng(32);
  const w = normalArray(rng, 100 * 40, 0.05);
  const file = encodeSafetensors([{ name: "w", dtype: "BF16", shape: [100, 40], data: w }]);
  const a = quantizeColumnsStored(file.subarray(8 + Number(file.readBigUInt64LE(0))), "BF16", 100, 40);
  const b = quantizeColumns(Float32Array.from(w, (x) => new Float32Array(new Uint32Array([floatToBf16(x) << 16]).buffer)[0]!), 100, 40);
  assert.deepEqual(a.data, b.data);
  assert.deepEqual(a.scales, b.scales);
});

test("DynamicQuantizeMatMul on column-quantized weights equals the dequantized product", async () => {
  const rng = new Rng(33);
  const M = 5, N = 48, K = 96;
  const q = quantizeColumns(normalArray(rng, N * K, 0.02), N, K);
  const x = Float32Array.from({ length: M * K }, () => rng.int(256));
  x[0] = 0;
  x[1] = 255;
  const g = new GraphBuilder();
  const xin = g.input("x", "float32", [M, K]);
  const b = g.constant({ dtype: "int8", dims: [K, N], data: q.data }, "b");
  const s = g.constant({ dtype: "float32", dims: [N], data: q.scales }, "s");
  g.output(g.node("DynamicQuantizeMatMul", [xin, b, s], [{ dtype: "float32", shape: [M, N] }], {}, "com.microsoft")[0]!);
  const { session } = await createSession(g.toBytes(), { device: "cpu", shardFiles: [], threads: 1 });
  const y = (await session.run({ x: f32Tensor(x, [M, K]) }))[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  const d = dequantizeColumns(q);
  let err = 0, scale = 0;
  for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) {
    let ref = 0;
    for (let k = 0; k < K; k++) ref += x[i * K + k]! * d[n * K + k]!;
    scale = Math.max(scale, Math.abs(ref));
    err = Math.max(err, Math.abs(y[i * N + n]! - ref));
  }
  assert.ok(err / scale < 1e-5, `rel err ${(err / scale).toExponential(2)}`);
});
