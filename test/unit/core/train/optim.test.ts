/**
 * AdamW and gradient clipping against an independent float64 transcription of torch.optim.AdamW's update
 * (decoupled weight decay, bias-corrected moments) and of torch.nn.utils.clip_grad_norm_.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, clipGradNorm, globalNorm } from "../../../../extension/core/train/optim";
import { Rng, normalArray } from "../../../../extension/core/util/random";

/** torch's AdamW for one tensor, in float64, written from the algorithm in its documentation. */
function referenceAdamW(p0: number[], grads: number[][], lr: number[], o: { beta1: number; beta2: number; eps: number; weightDecay: number }): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, t0) => {
    const t = t0 + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! - lr[t0]! * o.weightDecay * p[i]!;
      m[i] = o.beta1 * m[i]! + (1 - o.beta1) * g[i]!;
      v[i] = o.beta2 * v[i]! + (1 - o.beta2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - o.beta1 ** t);
      const vHat = v[i]! / (1 - o.beta2 ** t);
      p[i] = p[i]! - (lr[t0]! * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

test("AdamW follows torch's update over many steps, with and without weight decay, at changing learning rates", () => {
  const rng = new Rng(7);
  for (const weightDecay of [0, 0.01, 0.1]) {
    const opts = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay };
    const n = 257;
    const start = normalArray(rng, n, 0.5);
    const grads = Array.from({ length: 40 }, (_, s) => Array.from(normalArray(rng, n, 1 / (1 + s))));
    const lr = grads.map((_, s) => 1e-2 * (1 - s / 50));
    const adam = new AdamW(opts);
    const p = Float32Array.from(start);
    grads.forEach((g, s) => {
      adam.beginStep();
      adam.update("w", p, Float32Array.from(g), lr[s]!);
    });
    const want = referenceAdamW(Array.from(start), grads, lr, opts);
    const scale = Math.max(...want.map(Math.abs));
    const err = Math.max(...want.map((w, i) => Math.abs(w - p[i]!)));
    assert.ok(err < 1e-5 * scale, `weight decay ${weightDecay}: max error ${err} of scale ${scale}`);
    assert.equal(adam.step, grads.length);
  }
});

test("AdamW keeps one pair of moments per tensor name and refuses a gradient of the wrong size", () => {
  const adam = new AdamW();
  const a = new Float32Array([1, 2]);
  const b = new Float32Array([3]);
  adam.beginStep();
  adam.update("a", a, new Float32Array([0.1, -0.1]), 0.1);
  adam.update("b", b, new Float32Array([1]), 0.1);
  assert.deepEqual([...adam.moments.keys()], ["a", "b"]);
  // The first step of Adam moves every coordinate by lr·sign(g) (bias correction makes m̂/√v̂ = ±1).
  assert.ok(Math.abs(a[0]! - 0.9) < 1e-6 && Math.abs(a[1]! - 2.1) < 1e-6, `${a}`);
  assert.throws(() => adam.update("a", a, new Float32Array(3), 0.1), /2 values but 3 gradients/);
});

test("clipGradNorm scales to the maximum norm as torch does, returns the norm before clipping, and leaves small gradients alone", () => {
  const rng = new Rng(3);
  const grads = [normalArray(rng, 100, 1), normalArray(rng, 17, 3)];
  let sq = 0;
  for (const g of grads) for (const x of g) sq += x * x;
  const norm = Math.sqrt(sq);
  const copy = grads.map((g) => Float32Array.from(g));
  assert.ok(Math.abs(clipGradNorm(copy, 1) - norm) < 1e-9 * norm);
  const coef = 1 / (norm + 1e-6);
  copy.forEach((g, k) => g.forEach((x, i) => assert.ok(Math.abs(x - grads[k]![i]! * coef) < 1e-6)));
  assert.ok(Math.abs(globalNorm(copy) - norm * coef) < 1e-5);
  const small = grads.map((g) => Float32Array.from(g));
  clipGradNorm(small, 10 * norm);
  assert.deepEqual(small, grads.map((g) => Float32Array.from(g)));
  const off = grads.map((g) => Float32Array.from(g));
  clipGradNorm(off, 0);
  assert.deepEqual(off, grads.map((g) => Float32Array.from(g)), "max norm 0 means no clipping");
});
