/**
 * The profiler end to end on fixtures: importance sums to 1, matches the reference's norms, zero-B layers get 0,
 * layers_to_transform is respected, and bad inputs give clear errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { readProfile, writeProfile } from "../../../extension/core/importance/profileFile";
import { LoraDropError } from "../../../extension/core/util/errors";
import { referenceForward } from "../../reference/llamaReference";
import { makeFixture, maxRelErr } from "../../helpers";
import { loraWeightNorm } from "../../../extension/core/importance/weight";

test("importance sums to 1 and equals the reference's per-layer sums", async () => {
  const fx = makeFixture({ numLayers: 3 }, { targets: ["q_proj", "v_proj", "down_proj"] }, { count: 6 });
  const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu", batchSize: 4 });
  const sum = p.importance.per_layer.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-12, `sum ${sum}`);
  for (const m of p.modules) assert.ok(Math.abs(p.importance.per_module[m]!.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.equal(p.sequences.length, 6);
  assert.equal(p.sequences[0]!.tokens[0], "<s>");
  assert.equal(p.sequences[0]!.special[0], true);
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const refRaw = [0, 0, 0];
  for (const s of p.sequences) {
    const ref = referenceForward(model, adapter.loras, s.ids);
    for (const [key, norms] of ref.norms) {
      const [layer, module] = key.split(".") as [string, string];
      refRaw[Number(layer)] += norms.reduce((a, b) => a + b, 0);
      const got = p.norms![module]![Number(layer)]![s.example]!;
      assert.ok(maxRelErr(got, norms, 1e-3 * Math.max(...norms)).err < 1e-4, `norms of ${key}`);
    }
  }
  assert.ok(maxRelErr(p.importance.per_layer_raw, refRaw).err < 1e-4);
});

test("a layer whose LoRA B is zero gets importance 0; layers_to_transform is respected", async () => {
  const fx = makeFixture({ numLayers: 4 }, { zeroBLayers: [2], layersToTransform: [0, 2, 3] }, { count: 4 });
  const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu" });
  assert.equal(p.importance.per_layer[2], 0);
  assert.equal(p.importance.per_layer[1], 0, "layer 1 has no LoRA");
  assert.equal(p.adapter.params.q_proj![1], 0);
  assert.ok(p.importance.per_layer[0]! > 0 && p.importance.per_layer[3]! > 0);
  const file = path.join(fx.root, "p.json");
  writeProfile(file, p);
  assert.deepEqual(readProfile(file).importance, p.importance, "the written profile reads back");
});

test("the weight criterion equals ||s·B·A||_F² computed densely", async () => {
  const fx = makeFixture({ numLayers: 2 }, {}, { count: 2 });
  const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, criterion: "weight" });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  for (const l of adapter.loras) {
    let dense = 0;
    for (let o = 0; o < l.outFeatures; o++) {
      for (let i = 0; i < l.inFeatures; i++) {
        let s = 0;
        for (let k = 0; k < l.r; k++) s += l.B[o * l.r + k]! * l.A[k * l.inFeatures + i]!;
        dense += (l.scale * s) ** 2;
      }
    }
    assert.ok(Math.abs(loraWeightNorm(l) - dense) < 1e-9 * dense);
  }
  assert.equal(p.norms, undefined);
  assert.ok(Math.abs(p.importance.per_layer.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});

async function expectError(fn: () => Promise<unknown>, code: string, fileHint: string): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof LoraDropError, String(e));
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(fileHint), e.message);
    return true;
  });
}

test("bad inputs give clear errors naming the file", async () => {
  const fx = makeFixture({ numLayers: 2 }, {}, { count: 2 });
  const base = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu" as const };
  const empty = path.join(fx.root, "empty.jsonl");
  fs.writeFileSync(empty, "\n\n");
  await expectError(() => profileAdapter({ ...base, dataPath: empty }), "DATASET_EMPTY", "empty.jsonl");
  const big = path.join(fx.root, "big.jsonl");
  fs.writeFileSync(big, JSON.stringify({ input_ids: [1, 5, 40000] }) + "\n");
  await expectError(() => profileAdapter({ ...base, dataPath: big }), "TOKEN_OUT_OF_RANGE", "big.jsonl");
  const cfgFile = path.join(fx.modelDir, "config.json");
  const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, model_type: "falcon" }));
  await expectError(() => profileAdapter(base), "UNSUPPORTED_ARCHITECTURE", "config.json");
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, hidden_size: 48, intermediate_size: 64 }));
  await expectError(() => profileAdapter(base), "ADAPTER_SHAPE_MISMATCH", "adapter_model.safetensors");
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  const st = path.join(fx.adapterDir, "adapter_model.safetensors");
  fs.truncateSync(st, fs.statSync(st).size - 10);
  await expectError(() => profileAdapter(base), "SAFETENSORS_TRUNCATED", "adapter_model.safetensors");
  await expectError(() => profileAdapter({ ...base, modelDir: path.join(fx.root, "nope") }), "FILE_NOT_FOUND", "nope");
});

test("cancelling stops the profile with CANCELLED", async () => {
  const fx = makeFixture({ numLayers: 2 }, {}, { count: 4 });
  const ac = new AbortController();
  ac.abort();
  await expectError(() => profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile }, { signal: ac.signal }), "CANCELLED", "profile");
});

test("profileAdapter dispatches the gradient criterion to the training graph", async () => {
  const fx = makeFixture({ numLayers: 2, tokenizer: false }, {}, { count: 3 });
  const ids = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(ids, [[1, 5, 9, 4], [1, 7, 7, 2, 3]].map((x) => JSON.stringify({ input_ids: x })).join("\n"));
  const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: ids, criterion: "gradient", device: "cpu" });
  assert.equal(p.criterion, "gradient");
  assert.equal(p.norms, undefined);
  assert.ok(Math.abs(p.importance.per_layer.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(p.importance.per_layer.every((x) => x > 0), "every LoRA layer gets a gradient");
});
