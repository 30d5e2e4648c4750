/**
 * Encoders with a tokenizer.json and text data in GLUE's sentence-pair form: pairs go through the tokenizer's
 * pair template (<s> A </s></s> B </s>, [CLS] A [SEP] B [SEP], BERT's token types 0/1 fed to the model and checked
 * against the reference), the profile's special tokens are flagged for the heatmap, and the labelled text trains
 * a classifier.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { trainLora } from "../../../extension/core/train/train";
import { evaluateClassifier } from "../../../extension/core/train/classification";
import { writeTinyArchModel, writeTinyArchAdapter } from "../../fixtures/tinyArch";
import { writeGlueLikeTextDataset } from "../../fixtures/glueLike";
import { tmpDir } from "../../helpers";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { encoderReference } from "../../reference/archReference";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import { loadTrainingExamples } from "../../../extension/core/data/examples";

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
    // The pair template: RoBERTa <s> A </s></s> B </s>, BERT [CLS] A [SEP] B [SEP].
    const between = arch === "roberta" ? [close, close] : [close];
    p.sequences.forEach((s, i) => {
      const [a, b] = [records[i]!.sentence1.split(" "), records[i]!.sentence2.split(" ")];
      const want = [open, ...a, ...between, ...b, close];
      assert.deepEqual(s.tokens, want, `${arch}: tokens of example ${i}`);
      assert.deepEqual(s.special, want.map((w) => w === open || w === close), `${arch}: special flags of example ${i}`);
    });
    // BERT's segments: 0 up to the first [SEP], 1 after it; the forward pass uses them (reference with token types).
    const model = loadHfModel(modelDir);
    const examples = loadTrainingExamples(model, data, 64, undefined);
    // (RoBERTa's tokenizer reports segments too, but the model has one token type and never reads them.)
    for (const [i, e] of examples.entries()) {
      const firstSep = e.tokens.indexOf(close);
      if (arch === "bert") assert.deepEqual(e.typeIds, e.ids.map((_, t) => (t <= firstSep ? 0 : 1)), `${arch}: token types of example ${i}`);
    }
    const adapter = loadAdapter(adapterDir, model.config);
    const runner = await LoraForwardRunner.create(model, adapter.loras, { logits: true, loraNorms: false, device: "cpu" });
    try {
      const batch = makeBatch(examples, arch === "roberta" ? 1 : 0);
      const { logits } = await runner.run(batch, adapter.loras);
      const L = model.config.numLabels ?? 2;
      examples.forEach((e, b) => {
        const ref = encoderReference(model, adapter.loras, e.ids, undefined, e.typeIds).logits;
        const scale = Math.max(...ref.map(Math.abs));
        ref.forEach((v, c) => assert.ok(Math.abs(logits![b * L + c]! - v) < 1e-4 * scale, `${arch} example ${b} class ${c}: ${logits![b * L + c]} vs ${v}`));
      });
      if (arch === "bert") {
        // Token types matter: the same ids as one segment give other logits.
        const flat = encoderReference(model, adapter.loras, examples[0]!.ids).logits;
        assert.ok(flat.some((v, c) => Math.abs(v - logits![c]!) > 1e-3), "segment embeddings change BERT's logits");
      }
    } finally {
      await runner.dispose();
    }
  }
});

test("a roberta classifier trains on labelled sentence pairs", async () => {
  const dir = tmpDir();
  const modelDir = path.join(dir, "model"), data = path.join(dir, "pairs.jsonl"), out = path.join(dir, "adapter");
  writeTinyArchModel(modelDir, { architecture: "roberta", numLayers: 2, vocabSize: 64, tokenizer: true });
  writeGlueLikeTextDataset(data, { count: 32 });
  const r = await trainLora({ modelDir, dataPath: data, outDir: out, r: 4, loraAlpha: 8, lr: 2e-2, steps: 30, batchSize: 16, device: "cpu", seed: 1 });
  const model = loadHfModel(modelDir);
  const examples = loadTrainingExamples(model, data, 64, undefined);
  const before = await evaluateClassifier(model, [], examples, { device: "cpu" });
  const adapter = loadAdapter(out, model.config);
  const after = await evaluateClassifier(withAdapterHead(model, adapter), adapter.loras, examples, { device: "cpu" });
  assert.ok(r.finalLoss < r.losses[0]!.loss, `loss ${r.losses[0]!.loss} → ${r.finalLoss}`);
  assert.ok(after.accuracy > before.accuracy, `accuracy ${before.accuracy} → ${after.accuracy}`);
});
