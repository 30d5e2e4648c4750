import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compareImportance } from "../../extension/viewModel/compare";
import { ALL_MODULES, gridValue, heatmapGrid } from "../../extension/viewModel/heatmapData";
import { cellAt, heatmapLayout, scrollToShow, visibleColumns, type HeatmapZoom } from "../../extension/viewModel/heatmapLayout";
import { selectLayers } from "../../extension/viewModel/layerSelection";
import { appendLoss, emptyLossSeries, thinLoss } from "../../extension/viewModel/lossSeries";
import { applySettings, DEFAULT_PANEL_STATE, fitStateToProfile, sanitizeState } from "../../extension/viewModel/panelState";
import { displayToken, filterSequences, truncateLabel, wordStartSegments } from "../../extension/viewModel/tokenText";
import { linearTicks, logTicks, makeValueScale, valueExtent } from "../../extension/viewModel/valueScale";
import { HOSTILE_TOKENS, makeProfile } from "./webviewFixtures";

test("heatmapGrid sums modules in profile order and reads one module as stored", () => {
  const p = makeProfile();
  const all = heatmapGrid(p, ALL_MODULES, 1)!;
  const q = heatmapGrid(p, "q_proj", 1)!;
  assert.equal(all.rows, p.layers.length);
  assert.equal(all.cols, p.sequences[1]!.tokens.length);
  for (let l = 0; l < all.rows; l++) {
    for (let t = 0; t < all.cols; t++) {
      let sum = 0;
      for (const m of p.modules) sum += p.norms![m]![l]![1]![t]!;
      assert.equal(gridValue(all, l, t), sum);
      assert.equal(gridValue(q, l, t), p.norms!["q_proj"]![l]![1]![t]);
    }
  }
  assert.equal(gridValue(all, all.rows, 0), undefined);
  const noNorms = { ...p, norms: undefined };
  assert.equal(heatmapGrid(noNorms, ALL_MODULES, 0), undefined);
});

test("cellAt inverts the cell geometry at any scroll offset", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 200, max: 2000 }), fc.constantFrom<HeatmapZoom>("fit", 4, 8, 16), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (rows, cols, width, zoom, fr, fc_) => {
      const l = heatmapLayout(rows, cols, width, zoom);
      const row = Math.floor(fr * (rows - 1));
      const col = Math.floor(fc_ * (cols - 1));
      const scrollX = scrollToShow(l, col, 0);
      const { first, end } = visibleColumns(l, scrollX);
      assert.ok(first <= col && col < end, "column visible after scrollToShow");
      const x = l.left + (col + 0.5) * l.cellWidth - scrollX;
      const y = l.top + (row + 0.5) * l.rowHeight;
      if (x < l.canvasWidth) assert.deepEqual(cellAt(l, x, y, scrollX), { row, col });
      assert.equal(cellAt(l, l.left - 1, y, scrollX), undefined);
    }),
  );
});

test("heatmapLayout fits short sequences and scrolls long ones", () => {
  const short = heatmapLayout(6, 12, 864, "fit");
  assert.equal(short.cellWidth, (864 - short.left) / 12);
  assert.ok(short.tokenLabels);
  const long = heatmapLayout(80, 4096, 1000, "fit");
  assert.equal(long.cellWidth, 2);
  assert.equal(long.contentWidth, 8192);
  assert.ok(long.canvasWidth <= 1000);
  assert.ok(!long.tokenLabels);
  assert.ok(long.rows * long.rowHeight <= 480);
});

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

test("displayToken makes invisible characters visible and leaves markup-looking text intact", () => {
  assert.equal(displayToken(HOSTILE_TOKENS.img), HOSTILE_TOKENS.img);
  assert.equal(displayToken(HOSTILE_TOKENS.bidi), "abc⟨U+202E⟩evil⟨U+202C⟩def");
  assert.equal(displayToken("a\nb\t"), "a↵b⇥");
  assert.equal(displayToken("  "), "␣␣");
  assert.equal(displayToken(""), "∅");
  assert.equal(truncateLabel("ab😀cd", 4), "ab😀…");
  assert.equal(truncateLabel("abc", 3), "abc");
});

test("filterSequences matches text case-insensitively and #index exactly", () => {
  const seqs = [{ tokens: ["Hello", " world"], example: 0 }, { tokens: ["foo"], example: 1 }, { tokens: ["WORLD"], example: 2 }];
  assert.deepEqual(filterSequences(seqs, "world"), [0, 2]);
  assert.deepEqual(filterSequences(seqs, "#1"), [1]);
  assert.deepEqual(filterSequences(seqs, "#9"), []);
  assert.deepEqual(filterSequences(seqs, "  "), [0, 1, 2]);
});

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

test("word-start marks split into their own runs and join back to the exact text; the filter matches them as spaces", () => {
  assert.deepEqual(wordStartSegments("\u2581The"), [{ text: "\u2581", wordStart: true }, { text: "The", wordStart: false }]);
  assert.deepEqual(wordStartSegments("a\u2581\u2581b\u2581"), [
    { text: "a", wordStart: false }, { text: "\u2581\u2581", wordStart: true }, { text: "b", wordStart: false }, { text: "\u2581", wordStart: true },
  ]);
  assert.deepEqual(wordStartSegments(""), []);
  fc.assert(fc.property(fc.array(fc.constantFrom("\u2581", "a", "😀", " ", "_", "\u202e")).map((xs) => xs.join("")), (text) => {
    const segs = wordStartSegments(text);
    assert.equal(segs.map((x) => x.text).join(""), text);
    for (const seg of segs) assert.equal(seg.wordStart, /^\u2581+$/.test(seg.text));
  }));
  const seqs = [{ tokens: ["<s>", "\u2581The", "\u2581cat"], example: 0 }, { tokens: ["<s>", "\u2581The", "cat"], example: 1 }];
  assert.deepEqual(filterSequences(seqs, "the cat"), [0]);
  assert.deepEqual(filterSequences(seqs, "thecat"), [1]);
});

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

test("compareImportance lines up layers and splits the kept sets", () => {
  const a = makeProfile({ seed: 1 });
  const b = makeProfile({ seed: 2 });
  const c = compareImportance(a, b, 0.7);
  assert.ok(c.aligned);
  c.difference.forEach((d, i) => assert.equal(d, b.importance.per_layer[i]! - a.importance.per_layer[i]!));
  const ka = selectLayers(a.importance.per_layer, 0.7).kept;
  const kb = selectLayers(b.importance.per_layer, 0.7).kept;
  for (let i = 0; i < ka.length; i++) {
    assert.equal(c.keptBoth.includes(i), ka[i]! && kb[i]!);
    assert.equal(c.keptPrimaryOnly.includes(i), ka[i]! && !kb[i]!);
    assert.equal(c.keptCompareOnly.includes(i), !ka[i]! && kb[i]!);
  }
  assert.equal(compareImportance(a, makeProfile({ layers: 4 }), 0.7).aligned, false);
});
