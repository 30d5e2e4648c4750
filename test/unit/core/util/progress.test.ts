/**
 * Progress of a run made of phases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { phasedProgress } from "../../../../extension/core/util/progress";

test("phased progress: each of the pipeline's phases is an equal slice of the whole", () => {
  const u = phasedProgress(2, 8, { step: 30, total: 60, message: "30/60 tokens", tokensPerSecond: 5 }, "profile");
  assert.equal(u.step / u.total, 2.5 / 8);
  assert.equal(u.message, "profile: 30/60 tokens");
  assert.equal(u.tokensPerSecond, 5);
  assert.equal(phasedProgress(7, 8, { step: 9, total: 9 }, "report").step, 8000);
  assert.equal(phasedProgress(0, 8, { step: 5, total: 0 }, "sample").step, 1000, "a phase with no total counts as done");
});
