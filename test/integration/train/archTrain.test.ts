/**
 * Training GPT-2 and the RoBERTa/BERT classifiers: the training graph's loss against the plain-loop references
 * (causal-LM cross-entropy for GPT-2, class cross-entropy for the encoders) and its LoRA gradients against central
 * finite differences of that float64 loss (tolerance as in trainGradients.test.ts: 2e-3 of the gradient's norm on a
 * random directional derivative), then a short training run on a separable synthetic task whose accuracy, computed
 * by the metrics, must rise; and the metrics against hand-computed values.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel, HfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { LossSession, LoraParam } from "../../../extension/core/runtime/lossSession";
import { headTensorShapes, initialHead } from "../../../extension/core/train/classifierHead";
import { classificationMetrics, evaluateClassifier } from "../../../extension/core/train/classification";
import { trainLora } from "../../../extension/core/train/train";
import { writeTinyArchModel, writeTinyArchAdapter, TinyArchOptions } from "../../fixtures/tinyArch";
import { writeGlueLikeDataset } from "../../fixtures/glueLike";
import { gpt2Reference, encoderReference } from "../../reference/archReference";
import { tmpDir } from "../../helpers";
import { Rng } from "../../../extension/core/util/random";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import { LoraModule } from "../../../extension/core/adapter/loraModule";
import { loadTrainingExamples } from "../../../extension/core/data/examples";

const SEQS = [[0, 45, 66, 29, 33, 26, 2], [0, 31, 181, 2], [0, 3, 4, 5, 6, 7, 8, 9, 10, 2]];
const LABELS = [1, 0, 2];

function referenceLoss(model: HfModel, loras: LoraModule[], head?: Map<string, Float64Array>): number {
  const c = model.config;
  if (c.architecture === "gpt2") {
    let sum = 0, n = 0;
    for (const ids of SEQS) {
      const { logits } = gpt2Reference(model, loras, ids);
      const V = c.vocabSize;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const mx = Math.max(...row);
        const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
        sum += lse - row[ids[t + 1]!]!;
        n++;
      }
    }
    return sum / n;
  }
  let sum = 0;
  SEQS.forEach((ids, i) => {
    const { logits } = encoderReference(model, loras, ids, head);
    const mx = Math.max(...logits);
    sum += mx + Math.log(logits.reduce((a, v) => a + Math.exp(v - mx), 0)) - logits[LABELS[i]!]!;
  });
  return sum / SEQS.length;
}

async function checkGradients(m: TinyArchOptions, targets: string[]): Promise<void> {
  const dir = tmpDir();
  const cfg = writeTinyArchModel(path.join(dir, "model"), { numLayers: 2, hiddenSize: 16, numHeads: 2, numLabels: 3, ...m });
  writeTinyArchAdapter(path.join(dir, "adapter"), cfg, { targets, r: 2 });
  const model = loadHfModel(path.join(dir, "model"));
  const loras = loadAdapter(path.join(dir, "adapter"), model.config).loras;
  // float64 copies for the reference, perturbed in place by the finite differences.
  const f64 = loras.map((l) => ({ ...l, A: Float64Array.from(l.A) as unknown as Float32Array, B: Float64Array.from(l.B) as unknown as Float32Array }));
  const params = new Map<string, LoraParam>(loras.map((l) => [l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B }]));
  const session = await LossSession.create(model, loras.map(slotOf), { gradients: true, dropout: false, device: "cpu" });
  try {
    const examples: TokenizedExample[] = SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i, label: LABELS[i]! }));
    const batch = makeBatch(examples, m.architecture === "roberta" ? 1 : 0);
    const { loss, grads } = await session.run(batch, session.countTargets(batch), params);
    const ref0 = referenceLoss(model, f64);
    assert.ok(Math.abs(loss - ref0) < 1e-5 * Math.abs(ref0), `${m.architecture}: loss ${loss} vs reference ${ref0}`);
    const rng = new Rng(5);
    const h = 1e-5;
    for (const l of f64) {
      for (const which of ["A", "B"] as const) {
        const x = l[which] as unknown as Float64Array;
        const got = grads!.get(l.param)![which];
        const dir = Float64Array.from({ length: x.length }, () => rng.normal());
        const norm = Math.hypot(...dir);
        const saved = Float64Array.from(x);
        const at = (step: number) => { for (let i = 0; i < x.length; i++) x[i] = saved[i]! + (step * dir[i]!) / norm; const v = referenceLoss(model, f64); x.set(saved); return v; };
        const fd = (at(h) - at(-h)) / (2 * h);
        let analytic = 0;
        for (let i = 0; i < x.length; i++) analytic += (got[i]! * dir[i]!) / norm;
        const gnorm = Math.hypot(...got);
        assert.ok(Math.abs(analytic - fd) <= 2e-3 * gnorm + 1e-7, `${m.architecture} ${l.param}.${which}: directional derivative ${analytic} vs finite difference ${fd} (|g| ${gnorm})`);
      }
    }
  } finally {
    await session.dispose();
  }
}

test("gpt2 training graph: causal-LM loss and c_attn/c_fc gradients match the reference", () => checkGradients({ architecture: "gpt2" }, ["c_attn", "c_fc"]));
test("roberta training graph: class cross-entropy and query/value/output.dense gradients match the reference", () => checkGradients({ architecture: "roberta" }, ["query", "value", "output.dense"]));
test("bert training graph: gradients through the erf GELU and the pooler match the reference", () => checkGradients({ architecture: "bert" }, ["key", "intermediate.dense"]));

/**
 * The classification head trained with the LoRA (PEFT's modules_to_save): its weights are graph inputs, and the
 * gradients of the class cross-entropy with respect to them match finite differences of the float64 reference.
 * The head starts from HF's initialisation here (the base model has none), so the check also covers initialHead.
 */
async function checkHeadGradients(arch: "roberta" | "bert"): Promise<void> {
  const dir = tmpDir();
  const cfg = writeTinyArchModel(path.join(dir, "model"), { architecture: arch, numLayers: 2, hiddenSize: 16, numHeads: 2, numLabels: 3 });
  writeTinyArchAdapter(path.join(dir, "adapter"), cfg, { targets: ["query"], r: 2 });
  const full = loadHfModel(path.join(dir, "model"));
  // Without its classifier (a bare encoder) the head starts as Hugging Face initialises it.
  const model: HfModel = { ...full, weights: new Map([...full.weights].filter(([n]) => !n.startsWith("classifier."))) };
  const loras = loadAdapter(path.join(dir, "adapter"), model.config).loras;
  const head = initialHead(model, new Rng(9));
  assert.deepEqual([...head.keys()], headTensorShapes(model).map((t) => t.name));
  for (const t of head.values()) {
    const std = Math.sqrt(t.data.reduce((a, v) => a + v * v, 0) / t.data.length);
    if (t.name.endsWith(".bias")) assert.ok(t.data.every((v) => v === 0), `${t.name} starts at zero`);
    else assert.ok(std > 0.01 && std < 0.04, `${t.name} starts with std ${std} (HF: 0.02)`);
  }
  // Random biases too, so that their gradients are not checked at a special point only.
  const rng = new Rng(6);
  for (const t of head.values()) if (t.name.endsWith(".bias")) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.1 * rng.normal();
  const f64 = new Map([...head.values()].map((t) => [t.name, Float64Array.from(t.data)]));
  const params = new Map<string, LoraParam>(loras.map((l) => [l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B }]));
  const session = await LossSession.create(model, loras.map(slotOf), { gradients: true, dropout: false, device: "cpu", trainHead: true });
  try {
    const examples: TokenizedExample[] = SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i, label: LABELS[i]! }));
    const batch = makeBatch(examples, arch === "roberta" ? 1 : 0);
    const { loss, headGrads } = await session.run(batch, session.countTargets(batch), params, undefined, head);
    const ref0 = referenceLoss(model, loras, f64);
    assert.ok(Math.abs(loss - ref0) < 1e-5 * Math.abs(ref0), `${arch}: loss ${loss} vs reference ${ref0}`);
    assert.deepEqual([...headGrads!.keys()].sort(), [...head.keys()].sort());
    const h = 1e-5;
    for (const [name, x] of f64) {
      const got = headGrads!.get(name)!;
      const dir = Float64Array.from({ length: x.length }, () => rng.normal());
      const norm = Math.hypot(...dir);
      const saved = Float64Array.from(x);
      const at = (step: number) => { for (let i = 0; i < x.length; i++) x[i] = saved[i]! + (step * dir[i]!) / norm; const v = referenceLoss(model, loras, f64); x.set(saved); return v; };
      const fd = (at(h) - at(-h)) / (2 * h);
      let analytic = 0;
      for (let i = 0; i < x.length; i++) analytic += (got[i]! * dir[i]!) / norm;
      const gnorm = Math.hypot(...got);
      assert.ok(gnorm > 0, `${arch} ${name}: the loss reaches the head`);
      assert.ok(Math.abs(analytic - fd) <= 2e-3 * gnorm + 1e-7, `${arch} ${name}: directional derivative ${analytic} vs finite difference ${fd} (|g| ${gnorm})`);
    }
  } finally {
    await session.dispose();
  }
}

test("roberta classification head (modules_to_save): gradients of classifier.dense/out_proj match finite differences", () => checkHeadGradients("roberta"));
test("bert classification head (modules_to_save): gradients of classifier match finite differences (pooler frozen)", () => checkHeadGradients("bert"));

test("metrics: accuracy and Matthews correlation against hand-computed values", () => {
  // tp=2, tn=1, fp=1, fn=1: mcc = (2·1 − 1·1)/√(3·3·2·2) = 1/6.
  const m = classificationMetrics([1, 1, 0, 1, 0], [1, 1, 0, 0, 1], 2);
  assert.equal(m.accuracy, 3 / 5);
  assert.ok(Math.abs(m.mcc! - 1 / 6) < 1e-15);
  assert.equal(classificationMetrics([0, 0, 0], [0, 1, 0], 2).mcc, 0, "an empty prediction margin gives 0");
  assert.equal(classificationMetrics([2, 1, 0], [2, 0, 0], 3).mcc, undefined, "MCC only for binary tasks");
});

test("training a roberta classifier on a separable GLUE-like task raises its accuracy", async () => {
  const dir = tmpDir();
  const modelDir = path.join(dir, "model");
  writeTinyArchModel(modelDir, { architecture: "roberta", numLayers: 2, vocabSize: 64 });
  const data = path.join(dir, "train.jsonl");
  writeGlueLikeDataset(data, { count: 48, vocabSize: 64 });
  const model = loadHfModel(modelDir);
  const examples = loadTrainingExamples(model, data, 64, undefined);
  const before = await evaluateClassifier(model, [], examples, { device: "cpu" });
  const out = path.join(dir, "adapter");
  const r = await trainLora({ modelDir, dataPath: data, outDir: out, r: 4, loraAlpha: 8, lr: 2e-2, steps: 40, batchSize: 16, device: "cpu", seed: 3 });
  const adapter = loadAdapter(out, model.config);
  assert.equal(adapter.config.raw.task_type, "SEQ_CLS");
  assert.deepEqual(adapter.modules, ["attention.self.query", "attention.self.value"]);
  // The trained head is saved as PEFT saves modules_to_save, and scoring goes through it.
  assert.deepEqual(adapter.config.raw.modules_to_save, ["classifier", "score"]);
  assert.deepEqual([...adapter.head!.keys()].sort(), ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"]);
  assert.equal(r.headParams, 32 * 32 + 32 + 2 * 32 + 2, "classifier.dense 32×32+32, out_proj 2×32+2");
  const after = await evaluateClassifier(withAdapterHead(model, adapter), adapter.loras, examples, { device: "cpu" });
  assert.ok(r.finalLoss < r.losses[0]!.loss, `loss ${r.losses[0]!.loss} → ${r.finalLoss}`);
  assert.ok(after.accuracy >= 0.9 && after.accuracy > before.accuracy, `accuracy ${before.accuracy} → ${after.accuracy}`);
  assert.ok(after.mcc! > before.mcc!, `mcc ${before.mcc} → ${after.mcc}`);
  assert.ok(fs.existsSync(path.join(out, "adapter_model.safetensors")));
});
