import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { countParameters, keptPositions, layerStatus, loraCandidates, selectForProfile, selectLayers } from "../../../extension/viewModel/layerSelection";
import { importanceCsv } from "../../../extension/viewModel/csv";
import { makeProfile } from "./fixtures";

/**
 * Independent formulation: among the candidates, with importance renormalised over them, layer i is kept iff
 * the importance of the candidates ranked before it (higher importance, or equal and lower index) has not yet
 * reached T (within 1e-12, the engine's tolerance); when the total cannot reach T, all candidates are kept.
 */
function keptByPredicate(importance: number[], threshold: number, candidates = importance.map((_, i) => i)): boolean[] {
  const raw = candidates.map((i) => importance[i]!);
  const total = raw.reduce((a, b) => a + b, 0);
  const sub = raw.map((v) => (total > 0 ? v / total : 0));
  const subTotal = sub.reduce((a, b) => a + b, 0);
  const kept = importance.map(() => false);
  candidates.forEach((layer, k) => {
    let before = 0;
    sub.forEach((w, j) => {
      if (w > sub[k]! || (w === sub[k]! && j < k)) before += w;
    });
    kept[layer] = subTotal < threshold - 1e-12 || before < threshold - 1e-12;
  });
  return kept;
}

test("selectLayers keeps the most important layers until the threshold is reached", () => {
  const s = selectLayers([0.1, 0.5, 0.3, 0.1], 0.8);
  assert.deepEqual(keptPositions(s.kept), [1, 2]);
  assert.deepEqual(s.order, [1, 2, 0, 3]);
  assert.equal(s.keptCount, 2);
});

test("selectLayers keeps at least one layer and tolerates float sums at the threshold", () => {
  assert.equal(selectLayers([0.7, 0.2, 0.1], 0.01).keptCount, 1);
  // 0.7 + 0.2 is 0.8999999999999999 in floating point; a threshold of 0.9 must still be met by those two.
  assert.deepEqual(keptPositions(selectLayers([0.1, 0.2, 0.7], 0.9).kept), [1, 2]);
});

test("selectLayers agrees with the per-layer predicate on random importances", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 100 }), (raw, t) => {
      const total = raw.reduce((a, b) => a + b, 0);
      const importance = raw.map((v) => (total > 0 ? v / total : 0));
      const threshold = t / 100;
      assert.deepEqual(selectLayers(importance, threshold).kept, keptByPredicate(importance, threshold));
    }),
  );
});

test("layers without any LoRA are neither kept nor shared, and the threshold applies to the LoRA layers' importance", () => {
  const p = makeProfile({ layers: 7, seed: 11, noLoraLayers: [1, 4] });
  const candidates = loraCandidates(p.adapter.params, p.modules, p.layers.length);
  assert.deepEqual(candidates, [0, 2, 3, 5, 6]);
  for (let t = 1; t <= 100; t++) {
    const s = selectForProfile(p, t / 100);
    assert.deepEqual(s.kept, keptByPredicate(p.importance.per_layer, t / 100, candidates), `T = ${t / 100}`);
    const status = layerStatus(s);
    assert.equal(status[1], "none");
    assert.equal(status[4], "none");
    assert.equal(s.order.length, 5);
  }
  const csvRows = importanceCsv(p, 0.5, "share").split("\r\n");
  assert.match(csvRows[2]!, /^1,0,0,,,no LoRA,0,0$/);
});

test("selectLayers among candidates matches the predicate on random importances", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 100 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), (raw, t, pick) => {
      const candidates = raw.map((_, i) => i).filter((i) => pick[i]);
      assert.deepEqual(selectLayers(raw, t / 100, candidates).kept, keptByPredicate(raw, t / 100, candidates));
    }),
  );
});

test("countParameters: share keeps one LoRA per module sized like the largest shared one; drop keeps none", () => {
  const params = { q: [10, 20, 30, 40], v: [5, 0, 7, 6] };
  const kept = [false, true, false, true];
  // Kept: q 20+40, v 0+6 = 66. Shared q max(10,30)=30, v max(5,7)=7.
  assert.deepEqual(countParameters(params, ["q", "v"], kept, "share"), { before: 118, after: 103, reduction: 1 - 103 / 118 });
  assert.deepEqual(countParameters(params, ["q", "v"], kept, "drop"), { before: 118, after: 66, reduction: 1 - 66 / 118 });
});

test("countParameters matches a direct count on a generated profile at every threshold", () => {
  const p = makeProfile({ layers: 8, seed: 7 });
  for (let t = 1; t <= 100; t++) {
    const kept = selectLayers(p.importance.per_layer, t / 100).kept;
    let before = 0;
    let drop = 0;
    let sharedExtra = 0;
    for (const m of p.modules) {
      const counts = p.adapter.params[m]!;
      before += counts.reduce((a, b) => a + b, 0);
      drop += counts.filter((_, l) => kept[l]).reduce((a, b) => a + b, 0);
      sharedExtra += Math.max(0, ...counts.filter((_, l) => !kept[l]));
    }
    assert.equal(before, p.adapter.total_params);
    assert.equal(countParameters(p.adapter.params, p.modules, kept, "drop").after, drop);
    assert.equal(countParameters(p.adapter.params, p.modules, kept, "share").after, drop + sharedExtra);
  }
});
