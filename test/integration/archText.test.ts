/**
 * Encoders with a tokenizer.json and text data in GLUE's sentence-pair form: the profile's tokens carry the
 * special tokens the tokenizer adds (<s> … </s>, [CLS] … [SEP]), flagged as special for the heatmap, and the
 * labelled text trains a classifier.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../../extension/core/hfModel";
import { loadAdapter } from "../../extension/core/peftAdapter";
import { profileAdapter } from "../../extension/core/profile";
import { trainLora, loadTrainingExamples } from "../../extension/core/train/train";
import { evaluateClassifier } from "../../extension/core/train/classification";
import { writeTinyArchModel, writeTinyArchAdapter } from "../../extension/core/fixtures/tinyArch";
import { writeGlueLikeTextDataset } from "../../extension/core/fixtures/glueLike";
import { tmpDir } from "../helpers";

test("profile tokens of roberta and bert include their special tokens, flagged as special", async () => {
  for (const arch of ["roberta", "bert"] as const) {
    const dir = tmpDir();
    const modelDir = path.join(dir, "model"), adapterDir = path.join(dir, "adapter"), data = path.join(dir, "pairs.jsonl");
    const cfg = writeTinyArchModel(modelDir, { architecture: arch, numLayers: 2, vocabSize: 64, tokenizer: true });
    writeTinyArchAdapter(adapterDir, cfg);
    writeGlueLikeTextDataset(data, { count: 6 });
    const records = fs.readFileSync(data, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { sentence1: string; sentence2: string });
    const p = await profileAdapter({ modelDir, adapterDir, dataPath: data, device: "cpu" });
    const [open, close] = arch === "roberta" ? ["<s>", "</s>"] : ["[CLS]", "[SEP]"];
    p.sequences.forEach((s, i) => {
      const words = `${records[i]!.sentence1} ${records[i]!.sentence2}`.split(" ");
      assert.deepEqual(s.tokens, [open, ...words, close], `${arch}: tokens of example ${i}`);
      assert.deepEqual(s.special, s.tokens.map((_, t) => t === 0 || t === s.tokens.length - 1), `${arch}: special flags of example ${i}`);
    });
  }
});

test("a roberta classifier trains on labelled sentence pairs", async () => {
  const dir = tmpDir();
  const modelDir = path.join(dir, "model"), data = path.join(dir, "pairs.jsonl"), out = path.join(dir, "adapter");
  writeTinyArchModel(modelDir, { architecture: "roberta", numLayers: 2, vocabSize: 64, tokenizer: true });
  writeGlueLikeTextDataset(data, { count: 32 });
  const r = await trainLora({ modelDir, dataPath: data, outDir: out, r: 4, alpha: 8, lr: 2e-2, steps: 30, batchSize: 16, device: "cpu", seed: 1 });
  const model = loadHfModel(modelDir);
  const examples = loadTrainingExamples(model, data, 64, undefined);
  const before = await evaluateClassifier(model, [], examples, { device: "cpu" });
  const after = await evaluateClassifier(model, loadAdapter(out, model.config).loras, examples, { device: "cpu" });
  assert.ok(r.finalLoss < r.losses[0]!.loss, `loss ${r.losses[0]!.loss} → ${r.finalLoss}`);
  assert.ok(after.accuracy > before.accuracy, `accuracy ${before.accuracy} → ${after.accuracy}`);
});
