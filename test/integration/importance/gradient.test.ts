/**
 * The gradient importance criterion: a layer's score is ‖∂L/∂A‖² + ‖∂L/∂B‖² summed over its modules, checked for
 * one module against every gradient entry obtained by central finite differences of the float64 reference loss;
 * and the profile file it produces (criterion "gradient", no per-token norms) validates and reads back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileGradient } from "../../../extension/core/importance/gradient";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { readProfile, writeProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture } from "../../helpers";
import { referenceLoss, float64Modules } from "../train/trainReference";

const SEQS = [[1, 17, 200, 33, 5, 9, 41], [1, 8, 8, 120], [1, 250, 3, 64, 77]];

test("gradient criterion equals the finite-difference gradient norm and writes a valid profile", async () => {
  const fx = makeFixture({ tokenizer: false, numLayers: 2 }, { r: 2, targets: ["q_proj", "v_proj"] });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, SEQS.map((ids) => JSON.stringify({ input_ids: ids })).join("\n") + "\n");
  const p = await profileGradient({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", batchSize: 8 });
  assert.equal(p.criterion, "gradient");
  assert.equal(p.norms, undefined);
  for (let l = 0; l < 2; l++) {
    const sum = p.importance.per_module_raw.q_proj![l]! + p.importance.per_module_raw.v_proj![l]!;
    assert.ok(Math.abs(p.importance.per_layer_raw[l]! - sum) <= 1e-12 * sum);
  }
  const file = path.join(fx.root, "g.json");
  writeProfile(file, p);
  assert.deepEqual(readProfile(file).importance, p.importance);

  // Layer 1's v_proj, entry by entry (input_ids data: every token after the first is a target; one batch).
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const values = new Map(loras.map((l) => [l.param, { A: Float64Array.from(l.A), B: Float64Array.from(l.B) }]));
  const masks = SEQS.map((ids) => ids.map((_, t) => t > 0));
  const target = values.get("L1.v_proj")!;
  const h = 1e-5;
  let squared = 0;
  for (const x of [target.A, target.B]) {
    for (let i = 0; i < x.length; i++) {
      const saved = x[i]!;
      x[i] = saved + h;
      const plus = referenceLoss(model, float64Modules(loras, values), SEQS, masks);
      x[i] = saved - h;
      const minus = referenceLoss(model, float64Modules(loras, values), SEQS, masks);
      x[i] = saved;
      squared += ((plus - minus) / (2 * h)) ** 2;
    }
  }
  const got = p.importance.per_module_raw.v_proj![1]!;
  // float32 gradients vs float64 differences: a few 1e-4 relative on the sum of squares (see trainGradients.test.ts).
  assert.ok(Math.abs(got - squared) < 2e-3 * squared, `gradient criterion ${got} vs finite differences ${squared}`);
});
