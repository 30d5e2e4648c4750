/**
 * Training with the torch engine against the onnx engine, on the same step plan (CPU, float32): continuing a
 * PEFT-written Llama adapter as a LoRA-drop adapter (two layers sharing one pair, cosine schedule with warm-up,
 * weight decay, clipping, gradient accumulation) and a RoBERTa classifier whose head trains too; and continuing a
 * pruned adapter in the compact LoRA-drop form, which PEFT alone cannot read. Per-step losses agree within 1e-5
 * relative, the written adapters within 1e-4, and the shared layers stay identical. Then the
 * promises around a run: kill -9 mid-training leaves no adapter, and resuming from the checkpoint gives exactly the
 * uninterrupted run; a NaN stops with NUMERICAL and writes nothing; cancelling writes nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { trainLora } from "../../../extension/core/train/train";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { torchProfile } from "../../../extension/core/importance/torchProfile";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter, Adapter } from "../../../extension/core/adapter/peftAdapter";
import { readSafetensorsIndex, readTensorF32 } from "../../../extension/core/io/safetensors";
import { isLoraDropError } from "../../../extension/core/util/errors";
import { torchTrain } from "../../../extension/core/train/torchTrain";
import { makeTorchFixtures, torchEnvOrSkip, TorchFixture } from "../../torchEnv";
import { tmpDir } from "../../helpers";
import { TrainOptions } from "../../../extension/core/train/settings";

const { env, skip } = torchEnvOrSkip();
const fixtures = env ? makeTorchFixtures(env, ["llama", "qwen2", "roberta"]) : undefined;
const quiet = { log: { info() {}, warn() {} } };

/** The same run for both engines: 10 examples, micro-batches of 3, two per step (the last step of an epoch has one). */
function settings(fx: TorchFixture, out: string): TrainOptions {
  return {
    modelDir: fx.modelDir, dataPath: fx.dataFile, outDir: out, initAdapterDir: fx.adapterDir, steps: 4, batchSize: 3, gradAccum: 2,
    lr: 1e-2, warmupSteps: 1, schedule: "cosine", weightDecay: 0.01, maxGradNorm: 1, seed: 7,
  };
}

function torchOpts(o: TrainOptions): TrainOptions {
  const { device: _d, threads: _t, ...rest } = o;
  return { ...rest, device: "cpu", python: env!.python, env: env!.env };
}

/** Largest |a-b| / max|b| over every LoRA tensor and head tensor of two adapters of one model. */
function adapterDistance(a: Adapter, b: Adapter): number {
  let worst = 0;
  b.loras.forEach((l, i) => {
    for (const w of ["A", "B"] as const) {
      const x = a.loras[i]![w], y = l[w];
      const scale = Math.max(...Array.from(y, Math.abs));
      for (let k = 0; k < y.length; k++) worst = Math.max(worst, Math.abs(x[k]! - y[k]!) / scale);
    }
  });
  return worst;
}

function headTensors(dir: string): Map<string, Float32Array> {
  const index = readSafetensorsIndex(path.join(dir, "adapter_model.safetensors"));
  return new Map([...index.tensors.keys()].filter((k) => k.includes("classifier")).map((k) => [k, readTensorF32(index, k).data]));
}

for (const arch of ["llama", "roberta"] as const) {
  test(`torch-engine training equals onnx-engine training on the same step plan (${arch})`, { skip }, async () => {
    const fx = fixtures![arch];
    const dir = tmpDir();
    const shared = arch === "llama" ? { sharedLayers: [1, 2] } : {};
    const onnx = await trainLora({ ...settings(fx, path.join(dir, "onnx")), ...shared, device: "cpu" });
    const torch = await torchTrain({ ...torchOpts(settings(fx, path.join(dir, "torch"))), ...shared }, quiet);
    assert.equal(torch.losses.length, 4);
    onnx.losses.forEach((l, i) => {
      const got = torch.losses[i]!;
      assert.equal(got.lr, l.lr, `step ${l.step}: learning rate`);
      assert.ok(Math.abs(got.loss - l.loss) <= 1e-5 * Math.abs(l.loss), `step ${l.step}: torch loss ${got.loss} vs onnx ${l.loss}`);
    });
    assert.equal(torch.trainableParams, onnx.trainableParams);
    const cfg = loadHfModel(fx.modelDir).config;
    const a = loadAdapter(path.join(dir, "torch"), cfg), b = loadAdapter(path.join(dir, "onnx"), cfg);
    const start = loadAdapter(fx.adapterDir, cfg);
    assert.ok(adapterDistance(b, start) > 1e-3, "training moved the adapter");
    const d = adapterDistance(a, b);
    assert.ok(d <= 1e-4, `the adapters differ by ${d} of their scale`);
    if (arch === "llama") {
      for (const m of a.modules) {
        const [one, two] = [1, 2].map((layer) => a.loras.find((l) => l.layer === layer && l.module === m)!);
        assert.deepEqual(one!.A, two!.A, `${m}: shared layers' A differ`);
        assert.deepEqual(one!.B, two!.B, `${m}: shared layers' B differ`);
      }
    } else {
      const [ht, ho] = [headTensors(path.join(dir, "torch")), headTensors(path.join(dir, "onnx"))];
      assert.deepEqual([...ht.keys()].sort(), [...ho.keys()].sort());
      assert.ok(torch.headParams > 0);
      for (const [k, v] of ho) {
        const scale = Math.max(...Array.from(v, Math.abs));
        v.forEach((x, i) => assert.ok(Math.abs(ht.get(k)![i]! - x) <= 1e-4 * scale, `${k}[${i}]`));
      }
    }
  });
}

test("a compact LoRA-drop adapter: torch profile equals onnx profile, and training continues it as the onnx engine does", { skip }, async () => {
  // Qwen2's fixture: one rank and scale everywhere (Llama's rank and alpha patterns forbid sharing).
  const fx = fixtures!.qwen2;
  const dir = tmpDir();
  const pruned = path.join(dir, "pruned");
  const profile = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu" });
  await pruneAdapter({ adapterDir: fx.adapterDir, profile, outDir: pruned, modelDir: fx.modelDir, keep: 1, format: "compact" });
  const [tp, op] = [await torchProfile({ modelDir: fx.modelDir, adapterDir: pruned, dataPath: fx.dataFile, device: "cpu", python: env!.python, env: env!.env }),
    await profileAdapter({ modelDir: fx.modelDir, adapterDir: pruned, dataPath: fx.dataFile, device: "cpu" })];
  tp.importance.per_layer.forEach((x, i) => assert.ok(Math.abs(x - op.importance.per_layer[i]!) <= 1e-5, `layer ${i} importance`));
  const opts = { ...settings(fx, ""), initAdapterDir: pruned };
  const onnx = await trainLora({ ...opts, outDir: path.join(dir, "onnx"), device: "cpu" });
  const torch = await torchTrain({ ...torchOpts(opts), outDir: path.join(dir, "torch") }, quiet);
  onnx.losses.forEach((l, i) => assert.ok(Math.abs(torch.losses[i]!.loss - l.loss) <= 1e-5 * l.loss, `step ${l.step}: ${torch.losses[i]!.loss} vs ${l.loss}`));
  const cfg = loadHfModel(fx.modelDir).config;
  const written = loadAdapter(path.join(dir, "torch"), cfg);
  assert.equal(written.loraDrop?.format, "compact", "the compact form is kept");
  assert.ok(adapterDistance(written, loadAdapter(path.join(dir, "onnx"), cfg)) <= 1e-4);
  assert.ok([...torch.tensors.keys()].some((k) => k.startsWith("shared.")));
});

test("kill -9 during torch training leaves no adapter; the resumed run equals the uninterrupted one", { skip }, async () => {
  const fx = fixtures!.llama;
  const dir = tmpDir();
  const base = { ...torchOpts(settings(fx, "")), sharedLayers: [0, 2], threads: 1 };
  const whole = await torchTrain({ ...base, outDir: path.join(dir, "whole") }, quiet);
  const out = path.join(dir, "resumed");
  const checkpointDir = path.join(dir, "ck");
  let pids: number[] = [];
  await assert.rejects(torchTrain({ ...base, outDir: out, checkpointEvery: 2, checkpointDir }, {
    ...quiet, onSpawn: (p) => (pids = p), onStep: (e) => { if (e.step === 3) process.kill(pids[0]!, "SIGKILL"); },
  }), (e: unknown) => isLoraDropError(e) && e.code === "ENGINE_FAILED" && /SIGKILL/.test(e.message));
  assert.equal(fs.existsSync(out), false, "no adapter after the kill");
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary folder left");
  assert.ok(fs.existsSync(checkpointDir));
  const stepsRun: number[] = [];
  const resumed = await torchTrain({ ...base, outDir: out, checkpointEvery: 2, checkpointDir, resume: true }, { ...quiet, onStep: (e) => stepsRun.push(e.step) });
  assert.deepEqual(stepsRun, [3, 4], "the resumed run starts after the checkpoint of step 2");
  assert.deepEqual(resumed.losses, whole.losses);
  for (const [k, v] of whole.tensors) assert.deepEqual(resumed.tensors.get(k), v, `${k} after resuming`);
});

test("a non-finite loss stops torch training with NUMERICAL naming the step, and cancelling stops it; neither writes", { skip }, async () => {
  const fx = fixtures!.llama;
  const dir = tmpDir();
  const huge = path.join(dir, "huge");
  await assert.rejects(torchTrain({ ...torchOpts(settings(fx, huge)), lr: 1e30, maxGradNorm: 0 }, quiet),
    (e: unknown) => isLoraDropError(e) && e.code === "NUMERICAL" && /: step \d+: the loss is nan/.test(e.message));
  assert.equal(fs.existsSync(huge), false);
  const cancelled = path.join(dir, "cancelled");
  const controller = new AbortController();
  await assert.rejects(torchTrain(torchOpts(settings(fx, cancelled)), { ...quiet, signal: controller.signal, onStep: () => controller.abort() }),
    (e: unknown) => isLoraDropError(e) && e.code === "CANCELLED");
  assert.equal(fs.existsSync(cancelled), false);
});
