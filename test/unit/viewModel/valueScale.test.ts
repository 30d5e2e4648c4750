/**
 * Colour scales and their ticks.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { linearTicks, logTicks, makeValueScale, valueExtent } from "../../../extension/viewModel/valueScale";

test("value scales map their domain onto [0, 1]; log marks zeros", () => {
  const values = [0, 0.001, 0.1, 10];
  const extent = valueExtent(values);
  assert.deepEqual(extent, { minPositive: 0.001, max: 10 });
  const lin = makeValueScale("linear", extent);
  assert.equal(lin.position(5), 0.5);
  assert.equal(lin.position(0), 0);
  const log = makeValueScale("log", extent);
  assert.equal(log.position(0.001), 0);
  assert.equal(log.position(10), 1);
  assert.ok(Math.abs(log.position(0.1) - Math.log10(0.1 / 0.001) / Math.log10(10 / 0.001)) < 1e-12);
  assert.equal(log.position(0), -1);
  assert.equal(makeValueScale("linear", valueExtent([0, 0])).position(0), 0);
});

test("ticks are round and inside the domain", () => {
  const ticks = linearTicks(0, 0.37, 5);
  assert.deepEqual(ticks, [0, 0.1, 0.2, 0.3]);
  assert.deepEqual(logTicks(0.003, 250, 10), [0.01, 0.1, 1, 10, 100]);
  assert.ok(logTicks(1e-9, 1e9, 5).length <= 6);
  assert.deepEqual(logTicks(0.205, 7.02, 5), [0.5, 1, 2, 5]);
  assert.deepEqual(logTicks(3, 4, 5), [3]);
});
