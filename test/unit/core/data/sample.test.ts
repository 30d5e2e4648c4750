/**
 * Stratified sampling against hand computations: label strata, length buckets, proportional allocation with
 * largest remainders, seeding, and the held-out split.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { strataOf, stratifiedSample, holdOut } from "../../../../extension/core/data/sample";
import { RawExample } from "../../../../extension/core/data/dataset";
import { LoraDropError } from "../../../../extension/core/util/errors";

function raws(labels: unknown[]): RawExample[] {
  return labels.map((label, i) => ({ line: i + 1, text: "x", fields: label === undefined ? { text: "x" } : { text: "x", label } }));
}

test("label strata and proportional allocation by largest remainder", () => {
  // 10 × "a", 6 × "b", 4 × "c"; α = 0.25 → 5 examples. Quotas 2.5, 1.5, 1: floors 2, 1, 1; the one left goes to
  // the largest remainder, a tie between a and b (0.5 each) broken towards the larger stratum: a.
  const labels = [...Array(10).fill("a"), ...Array(6).fill("b"), ...Array(4).fill("c")];
  const strata = strataOf(raws(labels), labels.map(() => 3), "label");
  assert.deepEqual(strata.map((s) => [s.key, s.indices.length]), [["a", 10], ["b", 6], ["c", 4]]);
  const s = stratifiedSample(strata, 0.25, 7);
  assert.deepEqual(s.taken, [3, 1, 1]);
  assert.equal(s.indices.length, 5);
  assert.equal(s.indices.filter((i) => i < 10).length, 3);
  assert.equal(s.indices.filter((i) => i >= 16).length, 1);
  assert.deepEqual(s.indices, [...s.indices].sort((a, b) => a - b));
  assert.deepEqual(stratifiedSample(strata, 0.25, 7).indices, s.indices, "same seed, same sample");
  const others = [1, 2, 3, 4, 5, 6].map((seed) => stratifiedSample(strata, 0.25, seed).indices.join());
  assert.ok(new Set(others).size > 1, "the seed changes the draw");
  assert.deepEqual(stratifiedSample(strata, 0.001, 1).indices.length, 1, "at least one example");
  assert.throws(() => stratifiedSample(strata, 0, 1), LoraDropError);
});

test("non-string labels are strata too, and a missing label names its line", () => {
  const strata = strataOf(raws([1, 2, 1, true]), [1, 1, 1, 1], "label");
  assert.deepEqual(strata.map((s) => s.key), ["1", "2", "true"]);
  assert.throws(() => strataOf(raws(["a", undefined]), [1, 1], "label", undefined, "d.jsonl"), /d\.jsonl: line 2 has no field "label"/);
});

test("length buckets are quantiles, and equal lengths share a bucket", () => {
  const lengths = [8, 1, 7, 2, 6, 3, 5, 4];
  // Sorted 1…8, edges at positions 2, 4, 6 → lengths 3, 5, 7: buckets {1,2}, {3,4}, {5,6}, {7,8}.
  const strata = strataOf(raws(lengths.map(() => undefined)), lengths);
  assert.deepEqual(strata.map((s) => s.indices.map((i) => lengths[i]).sort()), [[1, 2], [3, 4], [5, 6], [7, 8]]);
  assert.equal(strata[0]!.key, "length 00001-00002");
  assert.equal(strataOf(raws([0, 0, 0]), [4, 4, 4]).length, 1);
  assert.deepEqual(strataOf(raws([0, 0, 0, 0]), [9, 1, 9, 1], undefined, [0, 2]).map((s) => s.indices), [[0, 2]], "only the pool takes part");
});

test("the held-out split is disjoint from the training pool and stratified", () => {
  const labels = [...Array(12).fill("a"), ...Array(8).fill("b")];
  const strata = strataOf(raws(labels), labels.map(() => 1), "label");
  const { train, eval: held } = holdOut(strata, 0.25, 3);
  assert.equal(held.length, 5);
  assert.equal(train.length, 15);
  assert.deepEqual([...train, ...held].sort((a, b) => a - b), labels.map((_, i) => i));
  // Quotas 3 and 2 are whole: exactly 3 "a" and 2 "b" are held out.
  assert.equal(held.filter((i) => i < 12).length, 3);
  assert.deepEqual(holdOut(strataOf(raws(["a"]), [1], "label"), 0.1, 1), { train: [0], eval: [] });
});
