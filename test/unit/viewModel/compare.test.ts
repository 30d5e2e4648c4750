/**
 * The comparison of two profiles.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareImportance } from "../../../extension/viewModel/compare";
import { selectLayers } from "../../../extension/viewModel/layerSelection";
import { makeProfile } from "./fixtures";

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
