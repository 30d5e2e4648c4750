/**
 * Learning-rate schedules against Hugging Face's get_scheduler formulas (linear and cosine decay after a linear
 * warm-up, constant with warm-up), evaluated independently here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { learningRate } from "../../../../extension/core/train/schedule";

/** transformers' lr_lambda functions, transcribed: the factor applied to the base learning rate at `step`. */
function hfFactor(kind: "linear" | "cosine" | "constant", step: number, total: number, warmup: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (kind === "constant") return 1;
  if (kind === "linear") return Math.max(0, (total - step) / Math.max(1, total - warmup));
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * 0.5 * progress)));
}

test("every schedule equals transformers' factor at every optimiser step (0 … total-1), with and without warm-up", () => {
  for (const kind of ["linear", "cosine", "constant"] as const) {
    for (const [total, warmup] of [[10, 0], [10, 3], [1, 0], [7, 7], [100, 10]] as const) {
      for (let step = 0; step < total; step++) {
        const got = learningRate(kind, 3e-4, step, total, warmup);
        const want = 3e-4 * hfFactor(kind, step, total, warmup);
        assert.ok(Math.abs(got - want) <= 1e-15, `${kind} total ${total} warm-up ${warmup} step ${step}: ${got} vs ${want}`);
      }
    }
  }
});

test("warm-up rises linearly from 0 to the base rate; linear and cosine decay reach 0 at the last step, cosine is half-way at the middle", () => {
  assert.equal(learningRate("linear", 1, 0, 10, 4), 0);
  assert.equal(learningRate("linear", 1, 2, 10, 4), 0.5);
  assert.equal(learningRate("cosine", 1, 4, 10, 4), 1);
  assert.equal(learningRate("linear", 1, 10, 10, 0), 0);
  assert.ok(Math.abs(learningRate("cosine", 1, 10, 10, 0)) < 1e-15);
  assert.ok(Math.abs(learningRate("cosine", 1, 5, 10, 0) - 0.5) < 1e-15);
  assert.equal(learningRate("constant", 2, 9, 10, 0), 2);
});
