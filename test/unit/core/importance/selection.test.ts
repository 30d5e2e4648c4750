/**
 * Threshold selection against hand computations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { normalise, selectByThreshold, selectTopK, cumulativeCurve, paramsAfter, rankByImportance } from "../../../../extension/core/importance/selection";

test("normalise sums to 1 and keeps zeros", () => {
  const n = normalise([3, 1, 0, 4]);
  assert.equal(n.reduce((a, b) => a + b, 0), 1);
  assert.deepEqual(n, [3 / 8, 1 / 8, 0, 4 / 8]);
  assert.deepEqual(normalise([0, 0]), [0, 0]);
});

test("keeps layers until the cumulative importance reaches T", () => {
  // Sorted: layer 3 (0.4), layer 0 (0.3), layer 1 (0.2), layer 2 (0.1).
  const imp = [0.3, 0.2, 0.1, 0.4];
  assert.deepEqual(rankByImportance(imp), [3, 0, 1, 2]);
  assert.deepEqual(selectByThreshold(imp, 0.5), { kept: [0, 3], shared: [1, 2], coverage: 0.7 });
  assert.deepEqual(selectByThreshold(imp, 0.7).kept, [0, 3], "0.4 + 0.3 reaches 0.7 exactly");
  assert.deepEqual(selectByThreshold(imp, 0.9).kept, [0, 1, 3]);
  assert.deepEqual(selectByThreshold(imp, 0.1).kept, [3], "at least one layer");
  assert.deepEqual(selectByThreshold(imp, 1).kept, [0, 1, 2, 3]);
  assert.deepEqual(selectTopK(imp, 2).kept, [0, 3]);
  assert.throws(() => selectByThreshold(imp, 0));
});

test("cumulative curve and parameter counts", () => {
  const curve = cumulativeCurve([0.3, 0.2, 0.1, 0.4]);
  assert.deepEqual(curve.map((x) => Math.round(x * 10) / 10), [0.4, 0.7, 0.9, 1]);
  const params = { q_proj: [10, 10, 10, 10], v_proj: [6, 6, 0, 6] };
  // Keep 0 and 3: 10+10+6+6 = 32 own, plus one shared q (10) and one shared v (6) = 48 of 58.
  assert.deepEqual(paramsAfter(params, [0, 3], "share"), { before: 58, after: 48, reduction: 1 - 48 / 58 });
  assert.equal(paramsAfter(params, [0, 3], "drop").after, 32);
});
