/**
 * Prune and the whole pipeline on GPT-2 and RoBERTa: pruned adapters keep PEFT's key names for the architecture
 * and load back with the selected structure; on the synthetic GLUE-like task the pipeline's report compares the
 * LoRA and LoRA-drop accuracy (recomputed here with the plain-loop reference) and parameter counts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { Adapter, loadAdapter, peftKey } from "../../../extension/core/adapter/peftAdapter";
import { readSafetensorsIndex, readTensorBytes, readTensorF32, encodeSafetensors, TensorToWrite } from "../../../extension/core/io/safetensors";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { runPipeline, PIPELINE_FILES } from "../../../extension/core/pipeline/pipeline";
import { trainLora } from "../../../extension/core/train/train";
import { readDataset } from "../../../extension/core/data/dataset";
import { writeTinyArchModel, writeTinyArchAdapter } from "../../fixtures/tinyArch";
import { writeGlueLikeDataset } from "../../fixtures/glueLike";
import { encoderReference } from "../../reference/archReference";
import { tmpDir } from "../../helpers";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import { countLoraParams } from "../../../extension/core/adapter/loraModule";

/**
 * An independent model folder for the references: the full checkpoint in `fullDir` with the adapter's saved head
 * values (modules_to_save) in place of its own classifier. Returns the folder.
 */
function mergeAdapterHead(fullDir: string, adapterDir: string, adapter: Adapter, dest: string): string {
  const full = loadHfModel(fullDir);
  const adapterIndex = readSafetensorsIndex(path.join(adapterDir, "adapter_model.safetensors"));
  fs.mkdirSync(dest);
  fs.copyFileSync(path.join(fullDir, "config.json"), path.join(dest, "config.json"));
  const tensors: TensorToWrite[] = [...full.shards[0]!.tensors.values()].map((e) => {
    const h = adapter.head!.get(e.name);
    const t = h ? readTensorF32(adapterIndex, h) : readTensorF32(full.shards[0]!, e.name);
    return { name: e.name, dtype: "F32", shape: t.shape, data: t.data };
  });
  fs.writeFileSync(path.join(dest, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
  return dest;
}

test("prune keeps the most important layers of gpt2 and roberta adapters under their PEFT keys", async () => {
  for (const arch of ["gpt2", "roberta"] as const) {
    const dir = tmpDir();
    const modelDir = path.join(dir, "model"), adapterDir = path.join(dir, "adapter");
    const cfg = writeTinyArchModel(modelDir, { architecture: arch, numLayers: 4 });
    writeTinyArchAdapter(adapterDir, cfg);
    const data = path.join(dir, "data.jsonl");
    fs.writeFileSync(data, [[0, 5, 6, 7, 2], [0, 9, 10, 2], [0, 11, 12, 13, 14, 2]].map((ids) => JSON.stringify({ input_ids: ids })).join("\n") + "\n");
    const profile = await profileAdapter({ modelDir, adapterDir, dataPath: data, device: "cpu" });
    const top = profile.importance.per_layer.indexOf(Math.max(...profile.importance.per_layer));
    const out = path.join(dir, "pruned");
    const r = await pruneAdapter({ adapterDir, profile, outDir: out, modelDir, keep: 1, mode: "drop" });
    const got = loadAdapter(out, cfg);
    assert.deepEqual([...new Set(got.loras.map((l) => l.layer))], [top], `${arch}: only the most important layer is kept`);
    assert.equal(countLoraParams(got.loras), r.paramsAfter);
    const names = [...readSafetensorsIndex(path.join(out, "adapter_model.safetensors")).tensors.keys()];
    for (const l of got.loras) assert.ok(names.includes(peftKey(l.layer, l.module, "A", arch)), `${arch}: ${peftKey(l.layer, l.module, "A", arch)} written`);
    assert.ok(names.every((n) => n.startsWith(arch === "gpt2" ? "base_model.model.transformer.h." : "base_model.model.roberta.encoder.layer.")), names.join(", "));
    // Drop-and-share in the compact form: the shared pair of a dotted module id is stored once and read back.
    const compact = path.join(dir, "compact");
    await pruneAdapter({ adapterDir, profile, outDir: compact, modelDir, keep: 1, mode: "share", format: "compact" });
    const shared = loadAdapter(compact, cfg);
    assert.equal(shared.loras.length, cfg.numLayers * shared.modules.length);
    assert.ok(shared.loras.filter((l) => l.layer !== top).every((l) => l.param.startsWith("shared.")), `${arch}: the other layers share one pair`);
  }
});

test("a SEQ_CLS adapter's modules_to_save classifier replaces the base head in the forward pass and survives prune", async () => {
  for (const arch of ["roberta", "bert"] as const) {
    const dir = tmpDir();
    const modelDir = path.join(dir, "model"), adapterDir = path.join(dir, "adapter");
    const cfg = writeTinyArchModel(modelDir, { architecture: arch, numLayers: 2, numLabels: 3 });
    writeTinyArchAdapter(adapterDir, cfg, { head: true });
    const model = loadHfModel(modelDir);
    const adapter = loadAdapter(adapterDir, cfg);
    assert.equal(adapter.head?.size, arch === "roberta" ? 4 : 2);
    // An independent model folder whose head holds the adapter's values, run through the plain-loop reference.
    const adapterIndex = readSafetensorsIndex(path.join(adapterDir, "adapter_model.safetensors"));
    const merged = mergeAdapterHead(modelDir, adapterDir, adapter, path.join(dir, "merged"));
    const ids = [0, 7, 8, 9, 2];
    const ref = encoderReference(loadHfModel(merged), adapter.loras, ids);
    const base = encoderReference(model, adapter.loras, ids);
    const runner = await LoraForwardRunner.create(withAdapterHead(model, adapter), adapter.loras, { logits: true, loraNorms: false, device: "cpu" });
    try {
      const { logits } = await runner.run(makeBatch([{ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true), example: 0 }]), adapter.loras);
      const scale = Math.max(...ref.logits.map(Math.abs));
      ref.logits.forEach((v, c) => assert.ok(Math.abs(logits![c]! - v) < 1e-4 * scale, `${arch}: class ${c} logit ${logits![c]} vs ${v}`));
      assert.ok(ref.logits.some((v, c) => Math.abs(v - base.logits[c]!) > 1e-2 * scale), "the adapter's head differs from the base head");
    } finally {
      await runner.dispose();
    }
    // Prune keeps the head tensors as they were.
    const data = path.join(dir, "data.jsonl");
    fs.writeFileSync(data, JSON.stringify({ input_ids: ids }) + "\n");
    const profile = await profileAdapter({ modelDir, adapterDir, dataPath: data, device: "cpu" });
    const out = path.join(dir, "pruned");
    await pruneAdapter({ adapterDir, profile, outDir: out, modelDir, keep: 1, mode: "drop" });
    const prunedIndex = readSafetensorsIndex(path.join(out, "adapter_model.safetensors"));
    for (const name of adapter.head!.values()) assert.deepEqual(readTensorF32(prunedIndex, name).data, readTensorF32(adapterIndex, name).data, `${arch}: ${name} kept`);
    // A head saved in BF16 (a bf16 training run) is carried over in BF16, byte for byte.
    const bf16Dir = path.join(dir, "adapter-bf16");
    fs.mkdirSync(bf16Dir);
    fs.copyFileSync(path.join(adapterDir, "adapter_config.json"), path.join(bf16Dir, "adapter_config.json"));
    const heads = new Set(adapter.head!.values());
    fs.writeFileSync(path.join(bf16Dir, "adapter_model.safetensors"), encodeSafetensors([...adapterIndex.tensors.keys()].map((name) => {
      const t = readTensorF32(adapterIndex, name);
      return { name, dtype: heads.has(name) ? "BF16" as const : "F32" as const, shape: t.shape, data: t.data };
    })));
    const bf16Out = path.join(dir, "pruned-bf16");
    await pruneAdapter({ adapterDir: bf16Dir, profile, outDir: bf16Out, modelDir, keep: 1, mode: "drop" });
    const [srcBf16, outBf16] = [bf16Dir, bf16Out].map((d) => readSafetensorsIndex(path.join(d, "adapter_model.safetensors")));
    for (const name of heads) {
      assert.equal(outBf16!.tensors.get(name)!.dtype, "BF16", `${arch}: ${name} stays BF16`);
      assert.ok(readTensorBytes(outBf16!, name).equals(readTensorBytes(srcBf16!, name)), `${arch}: ${name} bytes kept`);
    }
    assert.equal(loadAdapter(out, cfg).head?.size, adapter.head!.size);
  }
});

test("a bare encoder (…ForMaskedLM, original BERT gamma/beta names) with a SEQ_CLS adapter's head equals the reference", async () => {
  for (const arch of ["roberta", "bert"] as const) {
    const dir = tmpDir();
    const fullDir = path.join(dir, "full"), adapterDir = path.join(dir, "adapter"), bareDir = path.join(dir, "bare");
    const cfg = writeTinyArchModel(fullDir, { architecture: arch, numLayers: 2, numLabels: 3 });
    writeTinyArchAdapter(adapterDir, cfg, { head: true });
    // The bare checkpoint: no classifier, a masked-LM config without labels, BERT's LayerNorm as gamma/beta.
    const raw = JSON.parse(fs.readFileSync(path.join(fullDir, "config.json"), "utf8")) as Record<string, unknown>;
    delete raw.id2label; delete raw.label2id;
    raw.architectures = [arch === "roberta" ? "RobertaForMaskedLM" : "BertForMaskedLM"];
    fs.mkdirSync(bareDir);
    fs.writeFileSync(path.join(bareDir, "config.json"), JSON.stringify(raw));
    const full = loadHfModel(fullDir);
    const rename = (n: string) => (arch === "bert" ? n.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta") : n);
    const kept = [...full.shards[0]!.tensors.values()].filter((e) => !e.name.startsWith("classifier."));
    fs.writeFileSync(path.join(bareDir, "model.safetensors"), encodeSafetensors(kept.map((e) => {
      const t = readTensorF32(full.shards[0]!, e.name);
      return { name: rename(e.name), dtype: "F32" as const, shape: t.shape, data: t.data };
    }), { format: "pt" }));
    const bare = loadHfModel(bareDir);
    assert.equal(bare.config.numLabels, 2, "config.json alone implies 2 labels");
    const adapter = loadAdapter(adapterDir, bare.config);
    // The reference runs the full model with the adapter's head values in place of its own.
    const adapterIndex = readSafetensorsIndex(path.join(adapterDir, "adapter_model.safetensors"));
    const merged = mergeAdapterHead(fullDir, adapterDir, adapter, path.join(dir, "merged"));
    const ids = [0, 7, 8, 9, 10, 2];
    const ref = encoderReference(loadHfModel(merged), adapter.loras, ids);
    const withHead = withAdapterHead(bare, adapter);
    assert.equal(withHead.config.numLabels, 3, "the adapter's head sets the number of classes");
    const runner = await LoraForwardRunner.create(withHead, adapter.loras, { logits: true, loraNorms: false, device: "cpu" });
    try {
      const { logits } = await runner.run(makeBatch([{ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true), example: 0 }]), adapter.loras);
      const scale = Math.max(...ref.logits.map(Math.abs));
      assert.equal(logits!.length, 3);
      ref.logits.forEach((v, c) => assert.ok(Math.abs(logits![c]! - v) < 1e-4 * scale, `${arch}: class ${c} logit ${logits![c]} vs ${v}`));
    } finally {
      await runner.dispose();
    }
    // Training from that adapter on 3-class labels goes through its head, and the output keeps it.
    const data = path.join(dir, "three.jsonl");
    fs.writeFileSync(data, [0, 1, 2, 1].map((label, i) => JSON.stringify({ input_ids: [0, 5 + i, 9, 2], label })).join("\n") + "\n");
    const out = path.join(dir, "trained");
    // Frozen (trainHead: false), the head is carried over unchanged; trained (the default, as PEFT's
    // modules_to_save), it starts from the adapter's head and moves.
    const frozenOut = path.join(dir, "frozen");
    const frozen = await trainLora({ modelDir: bareDir, dataPath: data, outDir: frozenOut, initAdapterDir: adapterDir, steps: 2, lr: 1e-3, batchSize: 4, device: "cpu", trainHead: false });
    assert.ok(Number.isFinite(frozen.finalLoss));
    assert.equal(frozen.headParams, 0);
    const headOf = (dirName: string, base: string) => {
      const a = loadAdapter(dirName, bare.config);
      return readTensorF32(readSafetensorsIndex(path.join(dirName, "adapter_model.safetensors")), a.head!.get(base)!).data;
    };
    for (const [base, name] of adapter.head!) assert.deepEqual(headOf(frozenOut, base), readTensorF32(adapterIndex, name).data);
    const r = await trainLora({ modelDir: bareDir, dataPath: data, outDir: out, initAdapterDir: adapterDir, steps: 2, lr: 1e-3, batchSize: 4, device: "cpu" });
    assert.ok(Number.isFinite(r.finalLoss));
    assert.ok(r.headParams > 0, "the head is trained by default");
    for (const [base, name] of adapter.head!) {
      const start = readTensorF32(adapterIndex, name).data, end = headOf(out, base);
      assert.equal(end.length, start.length, `${arch} ${base}: the trained head keeps its shape`);
      // Adam's first steps move every weight with a non-zero gradient by about lr.
      const moved = end.reduce((m, v, i) => Math.max(m, Math.abs(v - start[i]!)), 0);
      assert.ok(moved > 1e-4 && moved < 3e-3, `${arch} ${base}: the trained head moved by ${moved}`);
    }
    // Same first step: the frozen and trained runs start from the same values, so their first losses agree.
    assert.ok(Math.abs(r.losses[0]!.loss - frozen.losses[0]!.loss) < 1e-6, `${arch}: first losses ${r.losses[0]!.loss} vs ${frozen.losses[0]!.loss}`);
  }
});

test("pipeline on a synthetic GLUE-like task: report compares LoRA and LoRA-drop accuracy and parameters", async () => {
  const dir = tmpDir();
  const modelDir = path.join(dir, "model");
  writeTinyArchModel(modelDir, { architecture: "roberta", numLayers: 4, vocabSize: 64, seed: 4 });
  const data = path.join(dir, "glue.jsonl");
  writeGlueLikeDataset(data, { count: 80, vocabSize: 64 });
  const out = path.join(dir, "run");
  const report = await runPipeline({
    modelDir, dataPath: data, outDir: out, sampleFraction: 0.5, keep: 2, stratifyBy: "label", evalFraction: 0.25,
    r: 4, loraAlpha: 8, lr: 2e-2, steps: 80, sampleSteps: 20, batchSize: 16, device: "cpu", seed: 7,
  });
  assert.ok(report.params.lora_drop < report.params.lora, `parameters ${report.params.lora_drop} < ${report.params.lora}`);
  const dropM = report.lora_drop.eval_metrics!, loraM = report.lora!.eval_metrics!, baseM = report.base_eval_metrics!;
  assert.equal(dropM.examples, report.data.eval);
  // The accuracies recomputed with the plain-loop reference from the adapters as written.
  const model = loadHfModel(modelDir);
  const raw = readDataset(data);
  const accuracy = (dirName: string | null) => {
    const adapter = dirName ? loadAdapter(path.join(out, dirName), model.config) : undefined;
    const loras = adapter?.loras ?? [];
    // Each adapter is scored with the classifier it trained and saved (modules_to_save).
    const scored = adapter ? withAdapterHead(model, adapter) : model;
    let correct = 0, tp = 0, tn = 0, fp = 0, fn = 0;
    for (const i of report.data.eval_indices) {
      const f = raw[i]!.fields as { input_ids: number[]; label: number };
      const { logits } = encoderReference(scored, loras, f.input_ids);
      const pred = logits[1]! > logits[0]! ? 1 : 0;
      if (pred === f.label) correct++;
      if (pred === 1) f.label === 1 ? tp++ : fp++; else f.label === 0 ? tn++ : fn++;
    }
    const den = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    return { accuracy: correct / report.data.eval_indices.length, mcc: den ? (tp * tn - fp * fn) / den : 0 };
  };
  for (const [name, m, dirName] of [["LoRA-drop", dropM, PIPELINE_FILES.adapter], ["LoRA", loraM, PIPELINE_FILES.lora_adapter], ["base", baseM, null]] as const) {
    const ref = accuracy(dirName);
    assert.ok(Math.abs(m.accuracy - ref.accuracy) < 1e-12, `${name} accuracy ${m.accuracy} vs reference ${ref.accuracy}`);
    assert.ok(Math.abs(m.mcc! - ref.mcc) < 1e-12, `${name} MCC ${m.mcc} vs reference ${ref.mcc}`);
  }
  assert.ok(loraM.accuracy > baseM.accuracy && dropM.accuracy > baseM.accuracy, `training helps: base ${baseM.accuracy}, LoRA ${loraM.accuracy}, LoRA-drop ${dropM.accuracy}`);
  const md = fs.readFileSync(path.join(out, PIPELINE_FILES.report_md), "utf8");
  assert.match(md, /## Classification on the held-out split/);
  assert.match(md, /\| Matthews correlation \|/);
  assert.ok(md.includes(`| accuracy | ${baseM.accuracy.toFixed(4)} | ${loraM.accuracy.toFixed(4)} | ${dropM.accuracy.toFixed(4)} |`));
});

/** A copy of a RoBERTa fixture without its classifier, as a …ForMaskedLM checkpoint is published. */
function bareRoberta(dir: string, seed: number): string {
  const fullDir = path.join(dir, "full"), bareDir = path.join(dir, "bare");
  writeTinyArchModel(fullDir, { architecture: "roberta", numLayers: 3, vocabSize: 64, seed });
  const raw = JSON.parse(fs.readFileSync(path.join(fullDir, "config.json"), "utf8")) as Record<string, unknown>;
  raw.architectures = ["RobertaForMaskedLM"];
  fs.mkdirSync(bareDir);
  fs.writeFileSync(path.join(bareDir, "config.json"), JSON.stringify(raw));
  const full = loadHfModel(fullDir);
  const kept = [...full.shards[0]!.tensors.values()].filter((e) => !e.name.startsWith("classifier."));
  fs.writeFileSync(path.join(bareDir, "model.safetensors"), encodeSafetensors(kept.map((e) => {
    const t = readTensorF32(full.shards[0]!, e.name);
    return { name: e.name, dtype: "F32" as const, shape: t.shape, data: t.data };
  }), { format: "pt" }));
  return bareDir;
}

test("pipeline from a bare encoder (no classifier): both runs train a head, save it, and are scored with it", async () => {
  const dir = tmpDir();
  const modelDir = bareRoberta(dir, 5);
  const data = path.join(dir, "glue.jsonl");
  writeGlueLikeDataset(data, { count: 64, vocabSize: 64 });
  const out = path.join(dir, "run");
  const report = await runPipeline({
    modelDir, dataPath: data, outDir: out, sampleFraction: 0.5, keep: 1, evalFraction: 0.25,
    r: 4, loraAlpha: 8, lr: 2e-2, steps: 40, sampleSteps: 10, batchSize: 16, device: "cpu", seed: 3,
  });
  assert.equal(report.settings.stratify_by, "label", "a classifier's data is stratified by label by default");
  const labels = (idx: number[]) => idx.map((i) => (readDataset(data)[i]!.fields as { label: number }).label);
  assert.deepEqual([...new Set(labels(report.data.eval_indices))].sort(), [0, 1], "both classes are held out");
  assert.equal(report.base_eval_metrics ?? null, null, "a bare encoder has no classifier of its own to score");
  const model = loadHfModel(modelDir);
  for (const [name, dirName, m] of [["LoRA-drop", PIPELINE_FILES.adapter, report.lora_drop.eval_metrics], ["LoRA", PIPELINE_FILES.lora_adapter, report.lora!.eval_metrics]] as const) {
    const adapter = loadAdapter(path.join(out, dirName), model.config);
    assert.equal(adapter.head?.size, 4, `${name}: the trained classifier is saved`);
    // Scored through its own head: the plain-loop reference agrees on every held-out prediction.
    const raw = readDataset(data);
    const scored = withAdapterHead(model, adapter);
    let correct = 0;
    for (const i of report.data.eval_indices) {
      const f = raw[i]!.fields as { input_ids: number[]; label: number };
      const { logits } = encoderReference(scored, adapter.loras, f.input_ids);
      if ((logits[1]! > logits[0]! ? 1 : 0) === f.label) correct++;
    }
    assert.ok(Math.abs(m!.accuracy - correct / report.data.eval_indices.length) < 1e-12, `${name}: accuracy ${m!.accuracy} vs reference`);
    assert.ok(m!.accuracy >= 0.75, `${name}: a separable task is learnt (accuracy ${m!.accuracy})`);
  }
  const md = fs.readFileSync(path.join(out, PIPELINE_FILES.report_md), "utf8");
  assert.match(md, /## Classification on the held-out split/);
});

test("training a classifier head resumes from a checkpoint to the same adapter, byte for byte", async () => {
  const dir = tmpDir();
  const modelDir = bareRoberta(dir, 6);
  const data = path.join(dir, "glue.jsonl");
  writeGlueLikeDataset(data, { count: 24, vocabSize: 64 });
  const base = { modelDir, dataPath: data, r: 2, loraAlpha: 4, lr: 1e-2, steps: 4, batchSize: 8, device: "cpu" as const, checkpointEvery: 2, seed: 11 };
  const a = path.join(dir, "a"), b = path.join(dir, "b");
  await trainLora({ ...base, outDir: a });
  const controller = new AbortController();
  await assert.rejects(trainLora({ ...base, outDir: b }, { signal: controller.signal, onStep: (e) => { if (e.step === 3) controller.abort(); } }));
  assert.ok(!fs.existsSync(b) && fs.existsSync(`${b}.checkpoint`), "cancelled after the step-2 checkpoint");
  await trainLora({ ...base, outDir: b, resume: true });
  assert.ok(fs.readFileSync(path.join(a, "adapter_model.safetensors")).equals(fs.readFileSync(path.join(b, "adapter_model.safetensors"))), "resumed adapter (LoRA and head) equals the uninterrupted one");
});

test("the gradient criterion on a classifier goes through the adapter's saved head, and needs labels", async () => {
  const dir = tmpDir();
  const bareDir = bareRoberta(dir, 8);
  const fullDir = path.join(dir, "full"), adapterDir = path.join(dir, "adapter");
  writeTinyArchAdapter(adapterDir, loadHfModel(fullDir).config, { head: true, seed: 4 });
  const adapter = loadAdapter(adapterDir, loadHfModel(bareDir).config);
  // The reference model: the full checkpoint with the adapter's head values in place of its own classifier.
  const merged = mergeAdapterHead(fullDir, adapterDir, adapter, path.join(dir, "merged"));
  const data = path.join(dir, "glue.jsonl");
  writeGlueLikeDataset(data, { count: 12, vocabSize: 64 });
  const viaHead = await profileAdapter({ modelDir: bareDir, adapterDir, dataPath: data, criterion: "gradient", device: "cpu" });
  const reference = await profileAdapter({ modelDir: merged, adapterDir, dataPath: data, criterion: "gradient", device: "cpu" });
  const scale = Math.max(...reference.importance.per_layer_raw);
  assert.ok(scale > 0);
  reference.importance.per_layer_raw.forEach((v, i) => assert.ok(Math.abs(viaHead.importance.per_layer_raw[i]! - v) <= 1e-5 * scale, `layer ${i}: ${viaHead.importance.per_layer_raw[i]} vs ${v}`));
  const unlabelled = path.join(dir, "unlabelled.jsonl");
  fs.writeFileSync(unlabelled, JSON.stringify({ input_ids: [0, 5, 6, 2] }) + "\n");
  await assert.rejects(profileAdapter({ modelDir: bareDir, adapterDir, dataPath: unlabelled, criterion: "gradient", device: "cpu" }), (e: unknown) => {
    assert.ok(e instanceof Error && (e as { code?: string }).code === "DATASET_INVALID" && /label/.test(e.message), String(e));
    return true;
  });
});
