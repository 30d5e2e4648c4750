/**
 * The heatmap's values: modules summed in profile order, or one module as stored.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ALL_MODULES, gridValue, heatmapGrid } from "../../../extension/viewModel/heatmapData";
import { makeProfile } from "./fixtures";

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
