/**
 * The sweep chart's pure model: which point the threshold builds (its kept set, as the engine selects), the
 * chart's domains and marker, the readout under the threshold, the chart widths, and the sweep messages of the
 * protocol (a malformed or unsorted sweep is refused).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { chartWidths, countLayers, keptSetAt, lossText, measuredPointIndex, sweepChartModel, sweepMatchesProfile, sweepSummary } from "../../../extension/viewModel/sweepChart";
import { parseHostMessage, parseWebviewMessage } from "../../../extension/viewModel/protocol";
import { selectForProfile, keptPositions } from "../../../extension/viewModel/layerSelection";
import { makeProfile, makeSweep } from "./fixtures";

const profile = makeProfile({ layers: 8 });
const sweep = makeSweep(profile);

test("the point the threshold builds is the one with its kept set, for every threshold on the slider", () => {
  assert.equal(sweep.points.length, 8, "one point per kept-set size of the 8 LoRA layers");
  for (let k = 1; k <= 100; k++) {
    const t = k / 100;
    const i = measuredPointIndex(sweep, profile, t);
    assert.notEqual(i, undefined, `T=${t}`);
    assert.deepEqual(sweep.points[i!]!.kept_layers, keptPositions(selectForProfile(profile, t).kept));
    // The point's own threshold builds it, and so does every T between the previous coverage and it.
    assert.ok(t <= sweep.points[i!]!.threshold + 1e-12);
  }
  assert.deepEqual(keptSetAt(profile, 1, false), [0, 1, 2, 3, 4, 5, 6, 7]);
  // A sweep that measured other thresholds only: no point for this T.
  const partial = { ...sweep, points: sweep.points.filter((p) => (p.kept_layers as number[]).length !== 3) };
  const t3 = sweep.points.find((p) => (p.kept_layers as number[]).length === 3)!.threshold;
  assert.equal(measuredPointIndex(partial, profile, t3), undefined);
});

test("per-module kept sets come from each module's own importance", () => {
  const sets = keptSetAt(profile, 0.5, true) as Record<string, number[]>;
  assert.deepEqual(Object.keys(sets), ["q_proj", "v_proj"]);
  assert.ok(!sets.v_proj!.includes(7), "v_proj has no LoRA on the last layer");
  assert.equal(countLayers(sets), sets.q_proj!.length + sets.v_proj!.length);
});

test("chart model: domains cover every point and both reference lines; the marker is the current point", () => {
  const m = sweepChartModel(sweep, 2);
  assert.equal(m.points.length, 8);
  assert.deepEqual(m.points.map((p) => p.current), [false, false, true, false, false, false, false, false]);
  assert.equal(m.x[0], 0);
  assert.equal(m.x[1], profile.adapter.total_params);
  for (const v of [m.base, m.full, ...m.points.map((p) => p.loss)]) assert.ok(v > m.y[0] && v < m.y[1]);
  const flat = sweepChartModel({ ...sweep, base_loss: 2, full_loss: 2, points: sweep.points.map((p) => ({ ...p, loss: 2 })) }, undefined);
  assert.ok(flat.y[0] < 2 && flat.y[1] > 2, "a flat sweep still has a band");
  assert.equal(flat.current, undefined);
});

test("readout: measured loss against the full adapter and the base model; other mode; unmeasured set", () => {
  const p = sweep.points[1]!;
  const text = sweepSummary(sweep, p, "share");
  assert.match(text, new RegExp(`Measured loss before retraining: ${p.loss.toFixed(4)} \\(\\+${(p.loss - 2.1).toFixed(4)} vs the full adapter's 2\\.1000; base model 3\\.2000\\)`));
  assert.match(text, new RegExp(`with ${p.lora_params.toLocaleString("en-US")} LoRA parameters`));
  assert.match(sweepSummary(sweep, undefined, "share"), /did not measure/);
  assert.match(sweepSummary(sweep, p, "drop"), /in share mode, not drop/);
  assert.equal(sweepSummary(undefined, undefined, "share"), "");
  assert.match(sweepSummary({ ...sweep, task: "sequence-classification" }, { ...p, accuracy: 0.75 }, "share"), /accuracy 75\.0%/);
  assert.equal(lossText(0.001234), "0.00123");
  assert.ok(sweepMatchesProfile(sweep, profile));
  assert.ok(!sweepMatchesProfile(sweep, { ...profile, created: "2027-01-01T00:00:00.000Z" }));
});

test("chart widths: three in a row when wide, else the curve and the sweep side by side, else stacked", () => {
  assert.deepEqual(chartWidths(1200), { bars: 384, curve: 384, sweep: 384 });
  assert.deepEqual(chartWidths(900), { bars: 892, curve: 434, sweep: 434 });
  assert.deepEqual(chartWidths(500), { bars: 492, curve: 492, sweep: 492 });
});

test("protocol: sweep messages are validated on both sides", () => {
  assert.deepEqual(parseHostMessage({ type: "sweep", sweep, sourcePath: "/w/p.profile.sweep.json" }), { type: "sweep", sweep, sourcePath: "/w/p.profile.sweep.json" });
  const unsorted = { ...sweep, points: [...sweep.points].reverse() };
  assert.equal(parseHostMessage({ type: "sweep", sweep: unsorted, sourcePath: "x" }), undefined);
  assert.equal(parseHostMessage({ type: "sweep", sweep: { ...sweep, full_loss: Number.NaN }, sourcePath: "x" }), undefined);
  assert.equal(parseHostMessage({ type: "sweep", sweep: { ...sweep, version: 2 }, sourcePath: "x" }), undefined);
  assert.equal(parseHostMessage({ type: "sweep", sweep: { ...sweep, points: [{ ...sweep.points[0], threshold: 0 }] }, sourcePath: "x" }), undefined);
  assert.deepEqual(parseHostMessage({ type: "sweepProgress", mode: "share", fraction: 0.5, message: "configuration 3/9" }), { type: "sweepProgress", mode: "share", fraction: 0.5, message: "configuration 3/9" });
  assert.equal(parseHostMessage({ type: "sweepProgress", mode: "share", fraction: 1.5, message: "" }), undefined);
  assert.deepEqual(parseHostMessage({ type: "sweepDone", mode: "drop", outcome: "cancelled" }), { type: "sweepDone", mode: "drop", outcome: "cancelled" });
  assert.equal(parseHostMessage({ type: "sweepDone", mode: "drop", outcome: "maybe" }), undefined);
  assert.deepEqual(parseHostMessage({ type: "clearSweeps" }), { type: "clearSweeps" });
  assert.deepEqual(parseWebviewMessage({ type: "evaluateThresholds", mode: "drop" }), { type: "evaluateThresholds", mode: "drop" });
  assert.equal(parseWebviewMessage({ type: "evaluateThresholds", mode: "all" }), undefined);
  assert.deepEqual(parseWebviewMessage({ type: "cancelEvaluation" }), { type: "cancelEvaluation" });
});
