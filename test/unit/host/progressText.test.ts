/**
 * Progress notifications: increments add up to the percentage reached.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressTracker } from "../../../extension/host/progressText";

test("progress: increments add up to the percentage reached, never negative", () => {
  const t = new ProgressTracker();
  const steps = [[1, 4], [2, 4], [2, 4], [1, 4], [4, 4]].map(([step, total]) => t.next({ step: step!, total: total!, tokensPerSecond: 1234.4 }));
  assert.deepEqual(steps.map((s) => s.increment), [25, 25, 0, 0, 50]);
  assert.equal(steps.reduce((a, s) => a + s.increment, 0), 100);
  assert.match(steps[0]!.message, /^25% · 1,234 tok\/s$/);
});
