/**
 * Layer-streamed training (streamed gradients with activation checkpointing) against the whole training graph:
 * the same step losses and final adapter values over a few AdamW steps with gradient accumulation, plain and with a
 * shared LoRA; streaming's limits (LoRA dropout) are an INVALID_ARGUMENT with `on` and a logged fallback with `auto`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { trainLora } from "../../../extension/core/train/train";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraDropError } from "../../../extension/core/util/errors";
import { blockBytes, planStreaming, trainingExtraBytes } from "../../../extension/core/stream/memoryBudget";
import { makeFixture, maxRelErr } from "../../helpers";
import { TrainOptions } from "../../../extension/core/train/settings";

/** A tiny 3-layer Llama (BF16, two shards) and 8 pre-tokenised sequences of uneven length. */
function setup() {
  const fx = makeFixture({ tokenizer: false, numLayers: 3, dtype: "BF16", shards: 2 }, {}, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  const lines = Array.from({ length: 8 }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: 12 - (i % 4) }, (_, t) => 1 + ((i * 11 + t * 7) % 250)) }));
  fs.writeFileSync(data, lines.join("\n") + "\n");
  return { ...fx, data };
}

const silent = { info: () => {}, warn: () => {} };

test("streamed training gives the whole graph's losses and final adapter (plain and shared LoRA)", async () => {
  const fx = setup();
  const model = loadHfModel(fx.modelDir);
  for (const extra of [{}, { sharedLayers: [0, 2] }] as Partial<TrainOptions>[]) {
    const base: TrainOptions = {
      modelDir: fx.modelDir, dataPath: fx.data, outDir: "", targets: ["q_proj", "v_proj", "down_proj"], steps: 4, lr: 1e-2,
      batchSize: 2, gradAccum: 2, warmupSteps: 1, device: "cpu", finalEval: true, ...extra,
    };
    const label = JSON.stringify(extra);
    const whole = await trainLora({ ...base, outDir: path.join(fx.root, `whole${label.length}`), stream: "off" });
    const streamed = await trainLora({ ...base, outDir: path.join(fx.root, `streamed${label.length}`), stream: "on" });
    assert.match(streamed.device, /streamed/);
    assert.doesNotMatch(whole.device, /streamed/);
    assert.equal(streamed.losses.length, 4);
    for (let i = 0; i < 4; i++) {
      const a = streamed.losses[i]!.loss, b = whole.losses[i]!.loss;
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(b), `${label} step ${i + 1}: loss ${a} vs ${b}`);
    }
    assert.ok(Math.abs(streamed.finalEvalLoss! - whole.finalEvalLoss!) <= 1e-4 * whole.finalEvalLoss!, `${label} final eval ${streamed.finalEvalLoss} vs ${whole.finalEvalLoss}`);
    // The loss moved, so the comparison covers trained values and not only the initial ones.
    assert.ok(Math.abs(whole.losses[3]!.loss - whole.losses[0]!.loss) > 1e-3, `${label}: the loss did not change`);
    const wa = loadAdapter(whole.adapterDir, model.config).loras;
    const sa = loadAdapter(streamed.adapterDir, model.config).loras;
    assert.equal(sa.length, wa.length);
    for (let m = 0; m < wa.length; m++) {
      for (const which of ["A", "B"] as const) {
        const ref = wa[m]![which];
        const scale = Math.max(...ref.map(Math.abs));
        assert.ok(scale > 0, `${label} ${wa[m]!.param}.${which} is non-zero`);
        const { err } = maxRelErr(sa[m]![which], ref, 1e-3 * scale);
        assert.ok(err < 1e-4, `${label} ${wa[m]!.param}.${which}: relative error ${err}`);
      }
    }
  }
});

test("stream on with LoRA dropout is INVALID_ARGUMENT; auto falls back to the whole graph and says why", async () => {
  const fx = setup();
  const base: TrainOptions = { modelDir: fx.modelDir, dataPath: fx.data, outDir: path.join(fx.root, "out"), steps: 1, batchSize: 2, device: "cpu", loraDropout: 0.1 };
  await assert.rejects(trainLora({ ...base, stream: "on" }), (e: unknown) => {
    assert.ok(e instanceof LoraDropError);
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.match(e.message, /dropout/);
    return true;
  });
  assert.ok(!fs.existsSync(base.outDir), "nothing written");
  // A budget far below the float32 weights: auto would stream, but dropout keeps it on the whole graph.
  const infos: string[] = [];
  const r = await trainLora({ ...base, stream: "auto", memoryBudget: 1024 }, { log: { ...silent, info: (m: string) => infos.push(m) } });
  assert.doesNotMatch(r.device, /streamed/);
  assert.ok(infos.some((m) => /dropout/.test(m) && /whole graph/.test(m)), `log: ${infos.join(" | ")}`);
});

test("stream auto streams exactly when the float32 weights do not fit the budget", async () => {
  const fx = setup();
  const cfg = loadHfModel(fx.modelDir).config;
  // The step's shape: batches of 2 padded to the longest example (12 tokens), one micro-batch, all 3 layers.
  const whole = planStreaming(cfg, { batch: 2, seq: 12, totalTokens: 24, layers: 3 }, Infinity, "off").needed;
  const opts: TrainOptions = { modelDir: fx.modelDir, dataPath: fx.data, outDir: "", steps: 1, batchSize: 2, device: "cpu", stream: "auto" };
  const tight = await trainLora({ ...opts, outDir: path.join(fx.root, "tight"), memoryBudget: whole - 1 });
  assert.match(tight.device, /streamed/);
  const fits = await trainLora({ ...opts, outDir: path.join(fx.root, "fits"), memoryBudget: whole });
  assert.doesNotMatch(fits.device, /streamed/);
});

test("the training plan counts the LM head and saved block inputs, and prefetches only when two blocks fit", async () => {
  const fx = setup();
  const cfg = loadHfModel(fx.modelDir).config;
  const shape = { batch: 2, seq: 12, totalTokens: 24, layers: 3 };
  const extra = trainingExtraBytes(cfg, shape);
  assert.equal(extra, 4 * cfg.vocabSize * cfg.hiddenSize + 8 * 24 * cfg.vocabSize + 4 * 4 * 24 * cfg.hiddenSize);
  const one = blockBytes(cfg, shape, 1).total + extra;
  const onePrefetched = blockBytes(cfg, shape, 1, true).total + extra;
  const opts: TrainOptions = { modelDir: fx.modelDir, dataPath: fx.data, outDir: "", steps: 2, batchSize: 2, device: "cpu", stream: "on" };
  const run = async (name: string, memoryBudget: number) => {
    const infos: string[] = [];
    const r = await trainLora({ ...opts, outDir: path.join(fx.root, name), memoryBudget }, { log: { ...silent, info: (m: string) => infos.push(m) } });
    return { r, plan: infos.find((m) => m.startsWith("streaming:")) ?? "" };
  };
  const single = await run("single", one);
  assert.match(single.plan, /^streaming: 1 layer\(s\) per block, ~/);
  assert.doesNotMatch(single.plan, /prefetching/, "one block's room: no prefetch");
  const double = await run("double", onePrefetched);
  assert.match(double.plan, /1 layer\(s\) per block, prefetching the next/);
  // Prefetching changes when weights are read, not the result.
  assert.deepEqual(double.r.losses.map((l) => l.loss), single.r.losses.map((l) => l.loss));
  await assert.rejects(trainLora({ ...opts, outDir: path.join(fx.root, "small"), memoryBudget: one - 1 }), (e: unknown) => {
    assert.ok(e instanceof LoraDropError && e.code === "MEMORY_BUDGET");
    assert.match(e.message, /for the LM head and the saved block inputs/);
    return true;
  });
});
