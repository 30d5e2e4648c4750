/**
 * The ablation criterion: per layer, the loss increase when that layer's LoRA is removed, against the float64
 * reference (the loss without the layer's pairs minus the loss with all of them); exactly 0 for a layer whose LoRA
 * is zero; per module with `ablationPerModule`; normalised over the positive part only; the profile file accepts
 * its signed raw values; a layer-only ablation profile is refused for a per-module prune. And a RoBERTa classifier.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { readProfile, writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter, writeAdapter } from "../../../extension/core/adapter/peftAdapter";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import { referenceLoss } from "../train/trainReference";
import { encoderReference } from "../../reference/archReference";
import { writeTinyArchAdapter, writeTinyArchModel } from "../../fixtures/tinyArch";
import { makeFixture, tmpDir } from "../../helpers";
import { normaliseImportance } from "../../../extension/core/importance/assemble";

const SEQS = [[1, 45, 66, 29, 33, 26, 9], [1, 31, 181, 7], [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]];
const MASKS = SEQS.map((ids) => ids.map((_, t) => t > 0));

test("ablation on a Llama: each layer's loss increase equals the reference's, a zero LoRA gives exactly 0, per module too", async () => {
  const fx = makeFixture({ numLayers: 4, tokenizer: false }, { targets: ["q_proj", "down_proj"], zeroBLayers: [2] }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, SEQS.map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const profile = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", criterion: "ablation", ablationPerModule: true });
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const full = referenceLoss(model, loras, SEQS, MASKS);
  assert.equal(profile.criterion, "ablation");
  assert.ok(Math.abs(profile.ablation!.full_loss - full) <= 1e-5 * full);
  assert.equal(profile.ablation!.per_module, true);
  const raw = profile.importance.per_layer_raw;
  assert.equal(raw[2], 0, "a layer whose B is zero: removing it changes nothing");
  for (const m of ["q_proj", "down_proj"]) assert.equal(profile.importance.per_module_raw[m]![2], 0);
  for (const layer of [0, 1, 3]) {
    const ref = referenceLoss(model, loras.filter((l) => l.layer !== layer), SEQS, MASKS) - full;
    assert.ok(Math.abs(raw[layer]! - ref) <= 2e-5 * full, `layer ${layer}: ${raw[layer]} vs reference ${ref}`);
    for (const m of ["q_proj", "down_proj"]) {
      const refM = referenceLoss(model, loras.filter((l) => l.layer !== layer || l.module !== m), SEQS, MASKS) - full;
      assert.ok(Math.abs(profile.importance.per_module_raw[m]![layer]! - refM) <= 2e-5 * full, `layer ${layer} ${m}`);
    }
  }
  // Normalised over the positive part: a layer whose removal lowers the loss counts as no importance.
  const positive = raw.map((g) => Math.max(g, 0));
  const total = positive.reduce((a, b) => a + b, 0);
  profile.importance.per_layer.forEach((v, i) => assert.ok(Math.abs(v - positive[i]! / total) < 1e-12));

  // The file keeps the signed raw values; a layer-only ablation profile has no per-module importance to prune by.
  const file = path.join(fx.root, "ablation.profile.json");
  const signed = raw.map((g, i) => (i === 0 ? -Math.abs(g) : g));
  writeProfile(file, { ...profile, importance: { ...profile.importance, per_layer_raw: signed, per_layer: normaliseImportance(signed) } });
  assert.ok(readProfile(file).importance.per_layer_raw[0]! < 0);
  const layerOnly = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", criterion: "ablation" });
  assert.equal(layerOnly.ablation!.per_module, false);
  assert.deepEqual(layerOnly.importance.per_layer_raw, raw, "the layer ablations do not depend on the per-module ones");
  assert.deepEqual(layerOnly.importance.per_module_raw.q_proj, raw, "without per-module ablation the table repeats the layer's value");
  await assert.rejects(pruneAdapter({ adapterDir: fx.adapterDir, profile: layerOnly, outDir: path.join(fx.root, "pm"), perModule: true }), /PROFILE_INVALID|per-module/);
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: layerOnly, outDir: path.join(fx.root, "pl"), threshold: 0.9 });
});

test("ablation on a RoBERTa classifier: class cross-entropy through the saved head, a zero layer gives exactly 0", async () => {
  const dir = tmpDir();
  const cfg = writeTinyArchModel(path.join(dir, "model"), { architecture: "roberta", numLayers: 3, hiddenSize: 16, numHeads: 2, numLabels: 3 });
  writeTinyArchAdapter(path.join(dir, "adapter"), cfg, { r: 2, targets: ["query"], head: true });
  // The same adapter with layer 1's B set to zero (the writer copies the saved head over).
  const zeroed = path.join(dir, "zeroed");
  const a = loadAdapter(path.join(dir, "adapter"), cfg);
  await writeAdapter(zeroed, a.config, a.loras.map((l) => (l.layer === 1 ? { ...l, B: new Float32Array(l.B.length) } : l)));
  const data = path.join(dir, "data.jsonl");
  const labels = [1, 0, 2];
  const seqs = [[0, 45, 66, 29, 2], [0, 31, 181, 2], [0, 3, 4, 5, 6, 2]];
  fs.writeFileSync(data, seqs.map((ids, i) => JSON.stringify({ input_ids: ids, label: labels[i] })).join("\n"));
  const profile = await profileAdapter({ modelDir: path.join(dir, "model"), adapterDir: zeroed, dataPath: data, device: "cpu", criterion: "ablation" });
  assert.equal(profile.importance.per_layer_raw[1], 0);
  const model = withAdapterHead(loadHfModel(path.join(dir, "model")), loadAdapter(zeroed, cfg));
  const loras = loadAdapter(zeroed, cfg).loras;
  const ce = (ls: typeof loras) => seqs.reduce((s, ids, i) => {
    const { logits } = encoderReference(model, ls, ids);
    const mx = Math.max(...logits);
    return s + mx + Math.log(Array.from(logits).reduce((z, v) => z + Math.exp(v - mx), 0)) - logits[labels[i]!]!;
  }, 0) / seqs.length;
  const full = ce(loras);
  for (const layer of [0, 2]) {
    const ref = ce(loras.filter((l) => l.layer !== layer)) - full;
    assert.ok(Math.abs(profile.importance.per_layer_raw[layer]! - ref) <= 2e-5 * full, `layer ${layer}: ${profile.importance.per_layer_raw[layer]} vs ${ref}`);
  }
});
