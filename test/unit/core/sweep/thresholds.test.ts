/**
 * The sweep's default thresholds (one per distinct kept set, by a hand computation of the cumulative importance)
 * and the sweep file's validator (each malformed field named).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { distinctThresholds } from "../../../../extension/core/sweep/thresholds";
import { selectAmong } from "../../../../extension/core/importance/selection";
import { sweepProblem } from "../../../../extension/core/sweep/sweepSchema";
import { makeProfile, makeSweep } from "../../viewModel/fixtures";

test("default thresholds: the cumulative importance after each next layer, zero-importance steps skipped, 1 included", () => {
  // Layers 0–4 carry a LoRA; layer 3 has none (not a candidate); layer 4 has zero importance.
  const importance = { per_layer: [0.2, 0.5, 0.3, 0.7, 0], per_module: { q: [0.4, 0.4, 0.2, 0, 0], v: [0, 0.5, 0.5, 0, 0] } };
  const candidates = { q: [0, 1, 2, 4], v: [1, 2] };
  // By hand over the candidates 0, 1, 2, 4 (shares 0.2, 0.5, 0.3, 0; ranked 1, 2, 0, 4): 0.5, 0.8, 1.0, then 1.0 again.
  assert.deepEqual(distinctThresholds({ importance } as never, candidates, false), [0.5, 0.8, 1]);
  // Per module: q over 0, 1, 2, 4 → 0.4, 0.8, 1.0; v over 1, 2 → 0.5, 1.0.
  assert.deepEqual(distinctThresholds({ importance } as never, candidates, true), [0.4, 0.5, 0.8, 1]);
  // Every threshold builds a different kept set, and the set at each is the one LoRA-drop keeps there.
  const kept = [0.5, 0.8, 1].map((t) => selectAmong(importance.per_layer, [0, 1, 2, 4], { threshold: t }).kept);
  assert.deepEqual(kept, [[1], [1, 2], [0, 1, 2]]);
  // All-zero importance: only T = 1 (every layer kept).
  assert.deepEqual(distinctThresholds({ importance: { per_layer: [0, 0], per_module: {} } } as never, { q: [0, 1] }, false), [1]);
});

test("sweep validator: a generated sweep passes; each malformed field is named", () => {
  const sweep = makeSweep(makeProfile({ layers: 5 }));
  assert.equal(sweepProblem(sweep), undefined);
  assert.equal(sweepProblem({ ...sweep, engine: "torch", measured: { ...sweep.measured, device: "torch cuda bfloat16" } }), undefined);
  const cases: [unknown, string][] = [
    [{ ...sweep, schema: "lora-drop.profile" }, "schema"],
    [{ ...sweep, version: 2 }, "version"],
    [{ ...sweep, mode: "keep" }, "mode"],
    [{ ...sweep, task: "regression" }, "task"],
    [{ ...sweep, engine: "jax" }, "engine"],
    [{ ...sweep, base_loss: null }, "base_loss"],
    [{ ...sweep, full_accuracy: 1.5 }, "full_accuracy"],
    [{ ...sweep, measured: { ...sweep.measured, tokens: -1 } }, "measured.tokens"],
    [{ ...sweep, points: [] }, "points"],
    [{ ...sweep, points: [sweep.points[1], sweep.points[0], ...sweep.points.slice(2)] }, "points[1].lora_params"],
    [{ ...sweep, points: [{ ...sweep.points[0], loss: "2" }] }, "points[0].loss"],
    [{ ...sweep, points: [{ ...sweep.points[0], kept_layers: { q: [0] } }] }, "points[0].kept_layers"],
    [{ ...sweep, per_module: true }, "points[0].kept_layers"],
    [[sweep], ""],
  ];
  for (const [x, field] of cases) assert.equal(sweepProblem(x)?.field, field, JSON.stringify(x).slice(0, 80));
});
