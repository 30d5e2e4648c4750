/**
 * The heatmap's geometry: cells, scrolling and fitting.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { cellAt, heatmapLayout, scrollToShow, visibleColumns, type HeatmapZoom } from "../../../extension/viewModel/heatmapLayout";

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
