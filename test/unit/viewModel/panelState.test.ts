/**
 * The panel's saved state and the user's settings.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ALL_MODULES } from "../../../extension/viewModel/heatmapData";
import { applySettings, DEFAULT_PANEL_STATE, fitStateToProfile, sanitizeState } from "../../../extension/viewModel/panelState";
import { makeProfile } from "./fixtures";

test("sanitizeState keeps valid fields and defaults the rest; fitStateToProfile clamps to the profile", () => {
  assert.deepEqual(sanitizeState(undefined), DEFAULT_PANEL_STATE);
  assert.deepEqual(sanitizeState({ version: 2, threshold: 0.5 }), DEFAULT_PANEL_STATE);
  const s = sanitizeState({ version: 1, module: "v_proj", sequence: 2, threshold: 0.42, mode: "drop", scale: "log", zoom: 8, pinned: { row: 1, col: 3 }, filter: "x", compareView: "difference" });
  // Saved before the "chosen" flags existed: a threshold and mode away from the old defaults were the user's choice.
  assert.deepEqual(s, { version: 1, module: "v_proj", sequence: 2, threshold: 0.42, mode: "drop", thresholdChosen: true, modeChosen: true, scale: "log", zoom: 8, pinned: { row: 1, col: 3 }, filter: "x", compareView: "difference" });
  const bad = sanitizeState({ version: 1, threshold: 7, mode: "x", scale: 1, zoom: 3, pinned: { row: -1, col: 0 }, sequence: 1.5 });
  assert.deepEqual(bad, DEFAULT_PANEL_STATE);
  const p = makeProfile({ sequenceLengths: [5, 5] });
  assert.deepEqual(fitStateToProfile({ ...s, module: "k_proj", sequence: 9 }, p), { ...s, module: ALL_MODULES, sequence: 0, pinned: null });
  assert.equal(fitStateToProfile({ ...s, sequence: 0, pinned: { row: 0, col: 5 } }, p).pinned, null);
});

test("applySettings sets the threshold and mode the user has not chosen in this panel, and only those", () => {
  const fresh = sanitizeState(undefined);
  assert.deepEqual(applySettings(fresh, { threshold: 0.6, mode: "drop" }), { ...fresh, threshold: 0.6, mode: "drop" });
  const moved = sanitizeState({ version: 1, threshold: 0.9, thresholdChosen: true, mode: "share", modeChosen: false });
  assert.deepEqual([moved.thresholdChosen, moved.modeChosen], [true, false], "explicit flags win over the inference");
  assert.deepEqual(applySettings(moved, { threshold: 0.6, mode: "drop" }), { ...moved, mode: "drop" });
  const both = { ...moved, modeChosen: true };
  assert.deepEqual(applySettings(both, { threshold: 0.6, mode: "drop" }), both);
  // A flag that is not a boolean is treated as absent.
  assert.equal(sanitizeState({ version: 1, threshold: 0.9, thresholdChosen: "yes" }).thresholdChosen, false);
});
