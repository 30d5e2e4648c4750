/**
 * The live loss curve's series.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { appendLoss, emptyLossSeries, thinLoss } from "../../../extension/viewModel/lossSeries";

test("appendLoss starts a new run when the step goes back; thinLoss keeps extremes", () => {
  let s = emptyLossSeries();
  for (let i = 1; i <= 5; i++) s = appendLoss(s, { step: i, totalSteps: 10, loss: 10 - i, lr: 0.1, tokensPerSecond: 5 });
  assert.equal(s.points.length, 5);
  s = appendLoss(s, { step: 1, totalSteps: 4, loss: 3, lr: 0.1, tokensPerSecond: 5 });
  assert.deepEqual(s.points, [{ step: 1, loss: 3 }]);
  const points = Array.from({ length: 1000 }, (_, i) => ({ step: i, loss: i === 537 ? 99 : Math.sin(i) }));
  const thin = thinLoss(points, 50);
  assert.ok(thin.length <= 100);
  assert.ok(thin.some((p) => p.step === 537 && p.loss === 99));
  assert.deepEqual(thin.map((p) => p.step), [...thin.map((p) => p.step)].sort((a, b) => a - b));
});
