/**
 * Training end to end on tiny fixtures: the loss falls on a memorisable set, the written adapter is a PEFT folder
 * that reloads to the same loss, a resumed run is bit-identical to an uninterrupted one, cancel writes nothing,
 * a shared LoRA is written once per layer with one value, and a NaN stops the run naming the step.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { readCheckpoint } from "../../../extension/core/train/checkpoint";
import { trainLora, evaluateLoss } from "../../../extension/core/train/train";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter, writeAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraDropError } from "../../../extension/core/util/errors";
import { makeFixture, tmpDir } from "../../helpers";
import { countLoraParams } from "../../../extension/core/adapter/loraModule";
import { loadTrainingExamples } from "../../../extension/core/data/examples";
import { TrainOptions } from "../../../extension/core/train/settings";

/** A tiny model (vocab 256, no tokenizer) and a dataset of `count` pre-tokenised sequences. */
function setup(count = 8, len = 12, model: Parameters<typeof makeFixture>[0] = {}) {
  const fx = makeFixture({ tokenizer: false, numLayers: 2, ...model }, {}, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: len - (i % 3) }, (_, t) => 1 + ((i * 7 + t * 13) % 250)) }));
  fs.writeFileSync(data, lines.join("\n") + "\n");
  return { ...fx, data };
}

test("the loss falls below half on a memorisable set; the reloaded adapter gives the training's final loss", async () => {
  const fx = setup();
  const out = path.join(fx.root, "trained");
  const log = path.join(fx.root, "train.jsonl");
  const events: number[] = [];
  const r = await trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: out, steps: 80, lr: 2e-2, batchSize: 8, device: "cpu", finalEval: true, logFile: log },
    { onStep: (e) => events.push(e.step) });
  assert.deepEqual(events, Array.from({ length: 80 }, (_, i) => i + 1));
  const first = r.losses[0]!.loss;
  assert.ok(r.finalLoss < 0.5 * first, `loss went from ${first} to ${r.finalLoss}`);

  const model = loadHfModel(fx.modelDir);
  const examples = loadTrainingExamples(model, fx.data, 512, undefined);
  // B starts at zero, so the first step's loss is the bare model's (computed by a graph without LoRA).
  const bare = await evaluateLoss(fx.modelDir, [], examples, { device: "cpu" });
  assert.ok(Math.abs(first - bare) < 1e-5 * bare, `first step ${first} vs bare model ${bare}`);

  const adapter = loadAdapter(out, model.config);
  const reloaded = await evaluateLoss(fx.modelDir, adapter.loras, examples, { device: "cpu" });
  assert.ok(Math.abs(reloaded - r.finalEvalLoss!) < 1e-5 * reloaded, `reloaded ${reloaded} vs end of training ${r.finalEvalLoss}`);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.task_type, "CAUSAL_LM");
  assert.equal(cfg.r, 8);
  assert.equal(cfg.lora_alpha, 16);
  assert.deepEqual(cfg.target_modules, ["q_proj", "v_proj"]);
  assert.equal(cfg.bias, "none");
  assert.equal(adapter.loras.length, 4);
  assert.equal(r.trainableParams, countLoraParams(adapter.loras));
  const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => l.event === "step").length, 80);
  assert.equal(lines.at(-1).event, "done");
});

test("PEFT initialisation: B is zero and A is uniform in ±1/√in; exampleIndices selects the data", async () => {
  const fx = setup(5);
  const out = path.join(fx.root, "init");
  const r = await trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: out, steps: 1, lr: 0, device: "cpu", targets: ["q_proj", "down_proj"], exampleIndices: [4, 1] });
  const model = loadHfModel(fx.modelDir);
  const picked = loadTrainingExamples(model, fx.data, 512, undefined).filter((e) => e.example === 1 || e.example === 4);
  const bare = await evaluateLoss(fx.modelDir, [], picked, { device: "cpu" });
  assert.ok(Math.abs(r.losses[0]!.loss - bare) < 1e-5 * bare, "the one step saw exactly examples 1 and 4");
  const adapter = loadAdapter(out, model.config);
  for (const l of adapter.loras) {
    assert.ok(l.B.every((v) => v === 0), "B is zeros");
    const bound = 1 / Math.sqrt(l.inFeatures);
    assert.ok(l.A.every((v) => Math.abs(v) <= bound), "A within the Kaiming-uniform bound");
    // A uniform on ±b has variance b²/3; with r·in ≥ 256 draws the sample variance is within 25 %.
    const variance = l.A.reduce((a, v) => a + v * v, 0) / l.A.length;
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.25, `variance ${variance} vs ${bound * bound / 3}`);
  }
});

test("a resumed run is bit-identical to an uninterrupted one; cancel leaves no output folder", async () => {
  const fx = setup(10, 9);
  const base: Omit<TrainOptions, "outDir"> = {
    modelDir: fx.modelDir, dataPath: fx.data, steps: 8, lr: 5e-3, batchSize: 3, gradAccum: 2, loraDropout: 0.1, warmupSteps: 2,
    schedule: "cosine", weightDecay: 0.01, seed: 7, checkpointEvery: 3, device: "cpu",
  };
  const full = await trainLora({ ...base, outDir: path.join(fx.root, "full") });
  assert.ok(!fs.existsSync(path.join(fx.root, "full.checkpoint")), "a finished run's default checkpoint is removed");
  const named = path.join(fx.root, "named-checkpoint");
  await trainLora({ ...base, outDir: path.join(fx.root, "named"), checkpointDir: named });
  assert.equal(readCheckpoint(named)?.state.step, 6, "a checkpoint folder the caller named stays (last one: step 6 of 8)");

  const outB = path.join(fx.root, "resumed");
  const controller = new AbortController();
  await assert.rejects(
    trainLora({ ...base, outDir: outB }, { signal: controller.signal, onStep: (e) => { if (e.step === 5) controller.abort(); } }),
    (e: unknown) => e instanceof LoraDropError && e.code === "CANCELLED");
  assert.ok(!fs.existsSync(outB), "no output folder after cancel");
  assert.ok(fs.existsSync(path.join(`${outB}.checkpoint`, "state.json")), "the step-3 checkpoint is there");
  assert.deepEqual(fs.readdirSync(fx.root).filter((f) => f.includes(".tmp-")), [], "no temporary folders left");

  await assert.rejects(trainLora({ ...base, lr: 1e-3, outDir: outB, resume: true }), /checkpoint was made with lr = 0.005/);
  const resumed = await trainLora({ ...base, outDir: outB, resume: true });
  assert.deepEqual(resumed.losses, full.losses);
  const a = fs.readFileSync(path.join(fx.root, "full", "adapter_model.safetensors"));
  const b = fs.readFileSync(path.join(outB, "adapter_model.safetensors"));
  assert.ok(a.equals(b), "the adapters are byte-identical");
  assert.ok(!fs.existsSync(`${outB}.checkpoint`), "the resumed run removed its checkpoint once done");
});

test("a shared LoRA is one parameter pair, written under every shared layer's key", async () => {
  const fx = setup(6, 10, { numLayers: 4 });
  const out = path.join(fx.root, "shared");
  const r = await trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: out, steps: 5, lr: 1e-2, device: "cpu", r: 4,
    sharedLayers: { q_proj: [1, 2, 3], v_proj: [0, 3] } });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(out, model.config);
  const at = (layer: number, module: string) => adapter.loras.find((l) => l.layer === layer && l.module === module)!;
  assert.deepEqual(at(1, "q_proj").B, at(3, "q_proj").B);
  assert.deepEqual(at(0, "v_proj").A, at(3, "v_proj").A);
  assert.notDeepEqual(at(0, "q_proj").B, at(1, "q_proj").B);
  assert.ok(at(1, "q_proj").B.some((v) => v !== 0), "the shared pair was trained");
  // q_proj: layer 0 own + 1 shared; v_proj: layers 1, 2 own + 1 shared → 5 pairs of r·(32 + out).
  const H = 32, kv = 16;
  assert.equal(r.trainableParams, 2 * 4 * (H + H) + 3 * 4 * (H + kv));

  // Continuing the written adapter with the same share set starts from its (equal) shared values.
  const again = await trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: path.join(fx.root, "again"), steps: 1, lr: 0, device: "cpu",
    initAdapterDir: out, sharedLayers: { q_proj: [1, 2, 3], v_proj: [0, 3] } });
  assert.equal(again.trainableParams, r.trainableParams);
  const examples = loadTrainingExamples(model, fx.data, 512, undefined);
  const evalLoss = await evaluateLoss(fx.modelDir, adapter.loras, examples, { device: "cpu" });
  assert.ok(Math.abs(again.losses[0]!.loss - evalLoss) < 1e-5 * evalLoss, "continued run starts at the adapter's loss");
});

test("a NaN stops training with NUMERICAL naming the step; bad outputs and options are refused before training", async () => {
  const fx = setup(3);
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  adapter.loras[1]!.B[0] = NaN;
  const bad = path.join(tmpDir(), "nan-adapter");
  await writeAdapter(bad, adapter.config, adapter.loras);
  await assert.rejects(trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: path.join(fx.root, "x"), steps: 3, device: "cpu", initAdapterDir: bad }),
    (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL" && /step 1:/.test(e.message));
  await assert.rejects(trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: fx.adapterDir, steps: 1, device: "cpu" }),
    (e: unknown) => e instanceof LoraDropError && e.code === "OUTPUT_EXISTS");
  await assert.rejects(trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: path.join(fx.root, "y"), steps: 1, sharedLayers: [0, 7] }),
    (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT" && /layer 7; the model has layers 0–1/.test(e.message));
  await assert.rejects(trainLora({ modelDir: fx.modelDir, dataPath: fx.data, outDir: path.join(fx.root, "y"), steps: 1, exampleIndices: [3] }),
    (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT" && /index 3 is outside the dataset's 3 examples/.test(e.message));
});
