/**
 * Time-left estimates: none until progress has run a second, then the average rate since the first update; a
 * phase that restarts its count starts a new estimate.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EtaClock, etaText, formatDuration, progressLine, progressParts } from "../../../../extension/core/util/eta";

test("eta: no estimate before a second of progress, then the average rate since the first update", () => {
  let now = 0;
  const clock = new EtaClock(() => now);
  assert.equal(clock.secondsLeft(0, 100), undefined, "first update: nothing measured yet");
  now = 500;
  assert.equal(clock.secondsLeft(10, 100), undefined, "half a second: still settling");
  now = 2000;
  assert.equal(clock.secondsLeft(20, 100), 8, "20 % in 2 s: 80 % left takes 8 s");
  now = 4000;
  assert.equal(clock.secondsLeft(20, 100), 16, "a stall lengthens the estimate");
  assert.equal(clock.secondsLeft(100, 100), 0);
  now = 5000;
  assert.equal(clock.secondsLeft(1, 10), undefined, "the count went back: a new phase, a new estimate");
  now = 7000;
  assert.equal(clock.secondsLeft(6, 10), 1.6, "50 % more in 2 s: 40 % left takes 1.6 s");
});

test("eta: durations and lines read as a person writes them", () => {
  assert.equal(formatDuration(8.4), "8 s");
  assert.equal(formatDuration(125), "2 min 05 s");
  assert.equal(formatDuration(3840), "1 h 04 min");
  assert.equal(formatDuration(NaN), "?");
  assert.equal(etaText(undefined), "estimating time left");
  assert.equal(etaText(0.2), "almost done");
  assert.equal(etaText(0), "done");
  assert.equal(etaText(75), "about 1 min 15 s left");
  const line = progressLine(progressParts({ step: 120, total: 300, message: "running the model: 120/300 tokens", tokensPerSecond: 1234.4 }, 12));
  assert.equal(line, "40% · running the model: 120/300 tokens · 1,234 tok/s · about 12 s left");
  assert.equal(progressLine(progressParts({ step: 3, total: 0 }, undefined)), "0% · estimating time left");
});
