/**
 * Streamed training gradients (checkpoints at block boundaries, block-backward sessions) equal the whole-graph
 * training session's loss and LoRA gradients, for several block sizes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { batchesOf, makeBatch } from "../../../extension/core/data/batch";
import { LossSession, LoraParam, countTargets } from "../../../extension/core/runtime/lossSession";
import { streamedLoraGradients } from "../../../extension/core/stream/streamGrad";
import { makeFixture, maxRelErr } from "../../helpers";
import { loadExamples } from "../../../extension/core/data/examples";

/** A 3-layer BF16 Llama (two shards) with q/v/down_proj LoRA on `layers`, its parameters and two batches of a step. */
function setup(layers: number[]) {
  const fx = makeFixture({ numLayers: 3, dtype: "BF16", shards: 2 }, { targets: ["q_proj", "v_proj", "down_proj"], layersToTransform: layers }, { count: 4 });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const slots = adapter.loras.map(slotOf);
  const params = new Map<string, LoraParam>();
  for (const l of adapter.loras) params.set(l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B });
  const batches = batchesOf(loadExamples(model, fx.dataFile, 4, 32), 2).map((g) => makeBatch(g));
  const denominator = batches.reduce((a, b) => a + countTargets(b), 0);
  return { fx, model, adapter, slots, params, batches, denominator };
}

test("streamed LoRA gradients equal the whole training graph's (blocks of 1 and 2 layers, BF16 shards)", async () => {
  const { model, slots, params, batches, denominator } = setup([0, 2]);
  const whole = await LossSession.create(model, slots, { gradients: true, dropout: false, device: "cpu" });
  let wholeLoss = 0;
  const wholeGrads = new Map<string, { A: Float32Array; B: Float32Array }>();
  try {
    for (const b of batches) {
      const r = await whole.run(b, denominator, params);
      wholeLoss += r.loss;
      for (const [name, g] of r.grads!) {
        const acc = wholeGrads.get(name) ?? { A: new Float32Array(g.A.length), B: new Float32Array(g.B.length) };
        g.A.forEach((v, i) => { acc.A[i]! += v; });
        g.B.forEach((v, i) => { acc.B[i]! += v; });
        wholeGrads.set(name, acc);
      }
    }
  } finally {
    await whole.dispose();
  }
  for (const k of [1, 2]) {
    const s = await streamedLoraGradients(model, slots, params, batches, denominator, { device: "cpu", layersPerBlock: k, prefetch: false });
    assert.equal(s.prefetched, false);
    assert.ok(Math.abs(s.loss - wholeLoss) < 1e-5 * Math.abs(wholeLoss), `k=${k}: loss ${s.loss} vs ${wholeLoss}`);
    for (const [name, g] of wholeGrads) {
      const got = s.grads.get(name)!;
      for (const which of ["A", "B"] as const) {
        const scale = Math.max(...g[which].map(Math.abs));
        assert.ok(scale > 0, `${name}.${which} has a gradient`);
        const { err } = maxRelErr(got[which], g[which], 1e-3 * scale);
        assert.ok(err < 1e-4, `k=${k} ${name}.${which}: relative error ${err}`);
      }
    }
  }
});

test("prefetching the next block in a worker gives the same streamed loss and gradients as reading in place", async () => {
  // Three layers in blocks of 1 (five loads), of 2 (a last block of 1: two block shapes in the load order) and of
  // 3 (one block, read once for forward and backward: nothing to prefetch).
  const { model, slots, params, batches, denominator } = setup([0, 1, 2]);
  for (const k of [1, 2, 3]) {
    const plain = await streamedLoraGradients(model, slots, params, batches, denominator, { device: "cpu", layersPerBlock: k, prefetch: false });
    const pre = await streamedLoraGradients(model, slots, params, batches, denominator, { device: "cpu", layersPerBlock: k, prefetch: true });
    const byDefault = await streamedLoraGradients(model, slots, params, batches, denominator, { device: "cpu", layersPerBlock: k });
    assert.deepEqual([plain.prefetched, pre.prefetched, byDefault.prefetched], [false, k < 3, k < 3], `k=${k}: which runs prefetched`);
    assert.ok(Number.isFinite(plain.loss) && plain.loss > 0, `k=${k}: loss ${plain.loss}`);
    assert.ok(Math.abs(pre.loss - plain.loss) <= 1e-6 * Math.abs(plain.loss), `k=${k}: loss ${pre.loss} vs ${plain.loss}`);
    assert.equal(byDefault.loss, pre.loss, `k=${k}: the default is the prefetched path`);
    assert.deepEqual([...pre.grads.keys()].sort(), [...plain.grads.keys()].sort());
    for (const [name, g] of plain.grads) {
      for (const which of ["A", "B"] as const) {
        const scale = Math.max(...g[which].map(Math.abs));
        assert.ok(scale > 0, `${name}.${which} has a gradient`);
        const got = pre.grads.get(name)![which];
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - g[which][i]!));
        assert.ok(worst <= 1e-6 * scale, `k=${k} ${name}.${which}: prefetched differs by ${worst} (scale ${scale})`);
      }
    }
  }
});
