/**
 * The optimiser, the learning-rate schedule and the data order, against hand computations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, clipGradNorm } from "../../../extension/core/train/optim";
import { learningRate } from "../../../extension/core/train/schedule";
import { DataOrder, stepsPerEpoch } from "../../../extension/core/train/dataOrder";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test("AdamW: two steps by hand (torch's formula, decoupled weight decay)", () => {
  const lr = 0.1, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const adam = new AdamW({ beta1: b1, beta2: b2, eps, weightDecay: wd });
  const p = Float32Array.of(1, -2);
  const g1 = [0.5, -0.25], g2 = [-1, 0.125];
  adam.beginStep();
  adam.update("p", p, Float32Array.from(g1), lr);
  // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + ε) = ±lr after the decay.
  close(p[0]!, 1 * (1 - lr * wd) - lr * 0.5 / (0.5 + eps));
  close(p[1]!, -2 * (1 - lr * wd) + lr * 0.25 / (0.25 + eps));
  const after1 = Array.from(p);
  adam.beginStep();
  adam.update("p", p, Float32Array.from(g2), lr);
  for (let i = 0; i < 2; i++) {
    const m = (1 - b1) * (b1 * g1[i]! + g2[i]!);
    const v = (1 - b2) * (b2 * g1[i]! ** 2 + g2[i]! ** 2);
    const mHat = m / (1 - b1 ** 2), vHat = v / (1 - b2 ** 2);
    close(p[i]!, after1[i]! * (1 - lr * wd) - (lr * mHat) / (Math.sqrt(vHat) + eps), 1e-6);
  }
});

test("gradient clipping scales to the global norm only when above it", () => {
  const a = Float32Array.of(3, 0), b = Float32Array.of(0, 4);
  assert.equal(clipGradNorm([a, b], 10), 5);
  assert.deepEqual([...a, ...b], [3, 0, 0, 4]);
  assert.equal(clipGradNorm([a, b], 1), 5);
  close(Math.hypot(a[0]!, b[1]!), 1, 1e-5);
  close(a[0]! / b[1]!, 0.75);
});

test("schedules: linear warm-up, then linear or cosine decay to zero, or constant", () => {
  close(learningRate("linear", 1, 0, 10, 2), 0);
  close(learningRate("linear", 1, 1, 10, 2), 0.5);
  close(learningRate("linear", 1, 2, 10, 2), 1);
  close(learningRate("linear", 1, 6, 10, 2), 0.5);
  close(learningRate("linear", 1, 10, 10, 2), 0);
  close(learningRate("cosine", 2, 6, 10, 2), 1);
  close(learningRate("cosine", 2, 4, 10, 2), 1 + Math.cos(Math.PI / 4));
  close(learningRate("constant", 3, 9, 10, 2), 3);
  close(learningRate("linear", 1, 0, 5, 0), 1, 0);
});

test("data order: each epoch visits every example once; steps end at the epoch's end; state resumes", () => {
  assert.equal(stepsPerEpoch(10, 3, 2), 2);
  const d = new DataOrder(10, 3, 2, 5);
  const s1 = d.nextStep();
  const s2 = d.nextStep();
  assert.deepEqual(s1.map((b) => b.length), [3, 3]);
  assert.deepEqual(s2.map((b) => b.length), [3, 1], "the epoch's last step is shorter");
  assert.deepEqual([...s1, ...s2].flat().sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i));
  assert.equal(d.epoch, 1);
  const copy = new DataOrder(10, 3, 2, 0, d.state());
  assert.deepEqual(copy.nextStep(), d.nextStep());
  assert.notDeepEqual(d.state().order, [...s1, ...s2].flat(), "a new permutation each epoch");
});
