/**
 * Progress notifications: increments add up to the percentage reached; the message says how far, what, how fast
 * and how long is left.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressTracker } from "../../../extension/host/progressText";

test("progress: increments add up to the percentage reached, never negative", () => {
  let now = 0;
  const t = new ProgressTracker(() => now);
  const steps = [[1, 4], [2, 4], [2, 4], [1, 4], [4, 4]].map(([step, total]) => {
    now += 1000;
    return t.next({ step: step!, total: total!, tokensPerSecond: 1234.4, message: `batch ${step}/${total}` });
  });
  assert.deepEqual(steps.map((s) => s.increment), [25, 25, 0, 0, 50]);
  assert.equal(steps.reduce((a, s) => a + s.increment, 0), 100);
  assert.equal(steps[0]!.message, "25% · batch 1/4 · 1,234 tok/s · estimating time left");
  assert.equal(steps[1]!.message, "50% · batch 2/4 · 1,234 tok/s · about 2 s left", "25 % more in 1 s: 50 % left takes 2 s");
  assert.equal(steps[4]!.message, "100% · batch 4/4 · 1,234 tok/s · done");
});
