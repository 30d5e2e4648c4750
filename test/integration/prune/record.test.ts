/**
 * Where the LoRA-drop record lives: a pruned adapter keeps adapter_config.json to PEFT's fields and carries the
 * record in lora_drop.json and the safetensors metadata; an adapter written before, with the record under
 * adapter_config.json's `lora_drop` key, still loads with its shared binding, and training from it writes the record
 * in the new place.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { RECORD_FILE } from "../../../extension/core/adapter/dropRecord";
import { readSafetensorsIndex, readTensorF32, encodeSafetensors } from "../../../extension/core/io/safetensors";
import { trainLora } from "../../../extension/core/train/train";
import { makeFixture } from "../../helpers";

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, unknown>;

test("the record is in lora_drop.json and the metadata, not in adapter_config.json; older adapters still load and are rewritten in the new place", async () => {
  const fx = makeFixture({ numLayers: 4, tokenizer: false }, { targets: ["q_proj", "v_proj"] }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, [[1, 5, 9, 3, 7], [1, 8, 2, 6]].map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const profile = path.join(fx.root, "profile.json");
  writeProfile(profile, await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", threads: 1 }));
  const out = path.join(fx.root, "pruned");
  const res = await pruneAdapter({ adapterDir: fx.adapterDir, profile, outDir: out, keep: 2 });
  const config = readJson(path.join(out, "adapter_config.json"));
  assert.equal("lora_drop" in config, false);
  assert.deepEqual(readJson(path.join(out, RECORD_FILE)), JSON.parse(JSON.stringify(res.record)));
  const meta = readSafetensorsIndex(path.join(out, "adapter_model.safetensors")).metadata;
  assert.deepEqual(JSON.parse(meta["lora_drop.shared_layers"]!), res.record.shared_layers);
  const model = loadHfModel(fx.modelDir);
  const current = loadAdapter(out, model.config);

  // The same adapter as an older version wrote it: the record under adapter_config.json's key, nowhere else.
  const legacy = path.join(fx.root, "legacy");
  fs.mkdirSync(legacy);
  fs.writeFileSync(path.join(legacy, "adapter_config.json"), JSON.stringify({ ...config, lora_drop: res.record }));
  const idx = readSafetensorsIndex(path.join(out, "adapter_model.safetensors"));
  fs.writeFileSync(path.join(legacy, "adapter_model.safetensors"), encodeSafetensors([...idx.tensors.keys()].map((name) => ({ name, dtype: "F32" as const, shape: idx.tensors.get(name)!.shape, data: readTensorF32(idx, name).data })), { format: "pt" }));
  const old = loadAdapter(legacy, model.config);
  assert.deepEqual(old.loraDrop, current.loraDrop);
  assert.deepEqual(old.loras.map((l) => l.param), current.loras.map((l) => l.param));
  assert.ok(old.loras.some((l) => l.param === "shared.q_proj"), "the shared layers are bound to one parameter");

  const trained = path.join(fx.root, "trained");
  await trainLora({ modelDir: fx.modelDir, dataPath: data, outDir: trained, initAdapterDir: legacy, steps: 1, batchSize: 2, device: "cpu", threads: 1 });
  assert.equal("lora_drop" in readJson(path.join(trained, "adapter_config.json")), false);
  assert.deepEqual(readJson(path.join(trained, RECORD_FILE)).shared_layers, res.record.shared_layers);
  assert.deepEqual(loadAdapter(trained, model.config).loraDrop?.kept_layers, res.record.kept_layers);
});
