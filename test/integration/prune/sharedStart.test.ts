/**
 * Training from an existing adapter with a share set: the shared pair starts where prune's would (the best
 * rank-r approximation of the mean update), and untrained pairs (B = 0) keep a non-zero A so they can learn.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { layoutFromAdapter } from "../../../extension/core/train/loraSetup";
import { meanLowRank } from "../../../extension/core/prune/lowRank";
import { makeFixture } from "../../helpers";

/** s·B·A as a dense out×in array. */
function product(A: Float32Array, B: Float32Array, r: number, inF: number, outF: number, s: number): Float64Array {
  const d = new Float64Array(outF * inF);
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) {
    let v = 0;
    for (let k = 0; k < r; k++) v += B[o * r + k]! * A[k * inF + i]!;
    d[o * inF + i] = s * v;
  }
  return d;
}

test("a shared pair starts at the low-rank mean of the shared layers' updates", () => {
  const fx = makeFixture({ numLayers: 4, tokenizer: false }, { r: 4 });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const layout = layoutFromAdapter(adapter, model.config, [1, 2, 3]);
  const shared = layout.params.get("shared.q_proj")!;
  const group = adapter.loras.filter((l) => l.module === "q_proj" && l.layer >= 1);
  const first = group[0]!;
  const want = meanLowRank(group, first.r, first.scale);
  const got = product(shared.A, shared.B, first.r, first.inFeatures, first.outFeatures, first.scale);
  const ref = product(want.A, want.B, first.r, first.inFeatures, first.outFeatures, first.scale);
  const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(scale > 0);
  got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= 1e-6 * scale));
  // Layer 0 keeps its own pair.
  const own = layout.modules.find((m) => m.layer === 0 && m.module === "q_proj")!;
  assert.equal(own.param, "L0.q_proj");
  assert.deepEqual(own.A, adapter.loras.find((l) => l.layer === 0 && l.module === "q_proj")!.A);
});

test("untrained pairs (B = 0) share a non-zero A", () => {
  const fx = makeFixture({ numLayers: 3, tokenizer: false }, { zeroBLayers: [0, 1, 2] });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const shared = layoutFromAdapter(adapter, model.config, [0, 1]).params.get("shared.v_proj")!;
  assert.ok(shared.A.some((v) => v !== 0), "A keeps a random start");
  assert.ok(shared.B.every((v) => v === 0));
});
