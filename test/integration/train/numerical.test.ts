/**
 * Training never saves a non-finite value: a learning rate that overflows float32 and a checkpoint whose optimiser
 * state is damaged both stop with NUMERICAL before any checkpoint or adapter holding NaN/Inf is written; the
 * checkpoint written before the damage stays as it was.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { trainLora } from "../../../extension/core/train/train";
import { TrainOptions } from "../../../extension/core/train/settings";
import { readCheckpoint } from "../../../extension/core/train/checkpoint";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32 } from "../../../extension/core/io/safetensors";
import { LoraDropError } from "../../../extension/core/util/errors";
import { makeFixture, treeHashes } from "../../helpers";

test("an overflowing learning rate stops with NUMERICAL at the step, writing no checkpoint and no adapter", async () => {
  const fx = makeFixture({ numLayers: 2, tokenizer: false, vocabSize: 64 }, {}, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, [[1, 5, 9, 3], [1, 7, 2, 8, 4]].map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const o: TrainOptions = { modelDir: fx.modelDir, dataPath: data, outDir: path.join(fx.root, "out"), checkpointDir: path.join(fx.root, "ckpt"), checkpointEvery: 1, steps: 3, batchSize: 2, lr: 1e39, device: "cpu", threads: 1 };
  await assert.rejects(trainLora(o), (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL" && e.file === data && /^.*: step 1: the update made L\d\.\w+\.[AB]\[\d+\] -?Infinity \(learning rate 1e\+39\)/.test(e.message));
  assert.equal(fs.existsSync(o.outDir), false);
  assert.equal(fs.existsSync(o.checkpointDir!), false);
});

test("a damaged optimiser state in a checkpoint stops the resumed run with NUMERICAL; the checkpoint is left as it was", async () => {
  const fx = makeFixture({ numLayers: 2, tokenizer: false, vocabSize: 64 }, {}, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, [[1, 5, 9, 3], [1, 7, 2, 8, 4], [1, 9, 9, 2]].map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const ckpt = path.join(fx.root, "ckpt");
  const o: TrainOptions = { modelDir: fx.modelDir, dataPath: data, outDir: path.join(fx.root, "out"), checkpointDir: ckpt, checkpointEvery: 1, steps: 3, batchSize: 2, lr: 1e-3, device: "cpu", threads: 1 };
  await trainLora(o);
  fs.rmSync(o.outDir, { recursive: true });
  const file = path.join(ckpt, "tensors.safetensors");
  const idx = readSafetensorsIndex(file);
  const victim = [...idx.tensors.keys()].find((k) => k.startsWith("adam.v."))!;
  fs.writeFileSync(file, encodeSafetensors([...idx.tensors.keys()].map((name) => {
    const d = readTensorF32(idx, name).data;
    if (name === victim) d[0] = -1;
    return { name, dtype: "F32" as const, shape: idx.tensors.get(name)!.shape, data: d };
  })));
  assert.ok(readCheckpoint(ckpt));
  const before = treeHashes(ckpt);
  await assert.rejects(trainLora({ ...o, resume: true }), (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL" && e.file === file && e.field === victim && /is -1 \(a second moment must be finite and ≥ 0\)/.test(e.message));
  assert.equal(fs.existsSync(o.outDir), false);
  assert.deepEqual(treeHashes(ckpt), before);
});
