/**
 * Layer streaming: block by block from the shards gives the whole-graph session's norms (and the reference's),
 * whatever the block size; the memory budget picks the block size or refuses with the size it needs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { batchesOf, makeBatch } from "../../../extension/core/data/batch";
import { streamedLoraNorms } from "../../../extension/core/stream/streamForward";
import { blockBytes, formatBytes, planStreaming, parseSize, RunShape } from "../../../extension/core/stream/memoryBudget";
import { LoraDropError } from "../../../extension/core/util/errors";
import { referenceForward } from "../../reference/llamaReference";
import { makeFixture, maxRelErr } from "../../helpers";
import { loadExamples } from "../../../extension/core/data/examples";

test("streamed norms equal the whole-graph session's for blocks of 1, 2 and 3 layers, prefetched or not (BF16, sharded, biases)", async () => {
  const fx = makeFixture({ numLayers: 4, dtype: "BF16", shards: 3, architecture: "qwen2", tokenizer: true },
    { targets: ["q_proj", "v_proj", "o_proj", "down_proj"], layersToTransform: [0, 1, 3] }, { count: 5 });
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const batches = batchesOf(loadExamples(model, fx.dataFile, 5, 64), 3).map((g) => makeBatch(g));
  const runner = await LoraForwardRunner.create(model, adapter.loras, { logits: false, loraNorms: true, device: "cpu", truncateAfterLastLora: true });
  const whole: Float32Array[] = [];
  try {
    for (const b of batches) whole.push((await runner.run(b, adapter.loras)).loraNorms!);
  } finally {
    await runner.dispose();
  }
  for (const k of [1, 2, 3]) {
    const s = await streamedLoraNorms(model, adapter.loras, batches, { device: "cpu", layersPerBlock: k, prefetch: k !== 2 });
    assert.deepEqual(s.tapOrder, runner.graph.tapOrder, `tap order, k=${k}`);
    batches.forEach((_, bi) => {
      const { err } = maxRelErr(s.loraNorms[bi]!, whole[bi]!, 1e-3 * Math.max(...whole[bi]!));
      assert.ok(err < 1e-5, `k=${k} batch ${bi}: relative error ${err}`);
    });
    // Layer 2 has no LoRA, so blocks come in two shapes for every k: one compiled session per shape.
    assert.equal(s.sessions, 2, `sessions for k=${k}`);
  }
});

test("a streamed profile equals the float64 reference and the non-streamed profile", async () => {
  const fx = makeFixture({ numLayers: 3, shards: 2 }, { targets: ["q_proj", "k_proj", "up_proj", "down_proj"] }, { count: 4 });
  const opts = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu" as const, batchSize: 3 };
  let streamed = false;
  const p = await profileAdapter({ ...opts, stream: "on", onPlan: (plan) => { streamed = plan.stream; } });
  assert.equal(streamed, true);
  const q = await profileAdapter({ ...opts, stream: "off" });
  assert.ok(maxRelErr(p.importance.per_layer_raw, q.importance.per_layer_raw).err < 1e-5);
  assert.ok(p.timing.peak_rss_bytes! > 0);
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  for (const s of p.sequences) {
    const ref = referenceForward(model, adapter.loras, s.ids);
    for (const [key, norms] of ref.norms) {
      const [layer, module] = key.split(".") as [string, string];
      const got = p.norms![module]![Number(layer)]![s.example]!;
      assert.ok(maxRelErr(got, norms, 1e-3 * Math.max(...norms)).err < 1e-4, `norms of ${key}`);
    }
  }
});

test("the memory budget picks the block size, and one smaller than a layer is refused with the size needed", async () => {
  const fx = makeFixture({ numLayers: 4 }, {}, { count: 3 });
  const cfg = loadHfModel(fx.modelDir).config;
  const shape: RunShape = { batch: 2, seq: 16, totalTokens: 30, layers: 4 };
  const two = blockBytes(cfg, shape, 2, true).total;
  const plans = [two, two - 1, blockBytes(cfg, shape, 1).total].map((b) => planStreaming(cfg, shape, b, "on"));
  assert.deepEqual(plans.map((p) => [p.layersPerBlock, p.prefetch]), [[2, true], [1, true], [1, false]], "block size and prefetching from the budget");
  assert.equal(planStreaming(cfg, shape, 1e12, "auto").stream, false, "auto does not stream what fits");
  assert.equal(planStreaming(cfg, shape, blockBytes(cfg, shape, 1).total, "auto").stream, true, "auto streams what does not fit");
  const model = loadHfModel(fx.modelDir);
  const batches = batchesOf(loadExamples(model, fx.dataFile, 3, 16), 2).map((g) => makeBatch(g));
  const uniform = await streamedLoraNorms(model, loadAdapter(fx.adapterDir, cfg).loras, batches, { device: "cpu", layersPerBlock: 1 });
  assert.equal(uniform.sessions, 1, "one session serves every layer of a uniform adapter");
  const one = blockBytes(cfg, shape, 1).total;
  assert.throws(() => planStreaming(cfg, shape, one - 1, "on"), (e: unknown) =>
    e instanceof LoraDropError && e.code === "MEMORY_BUDGET" && e.message.includes(`at least ${formatBytes(one)} is needed`));
  await assert.rejects(profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu", memoryBudget: 1024 }),
    (e: unknown) => e instanceof LoraDropError && e.code === "MEMORY_BUDGET" && /the memory budget 1\.0 KiB is smaller than one streamed decoder layer: at least [\d.]+ [KM]iB is needed/.test(e.message));
});

test("memory sizes parse with binary units", () => {
  assert.equal(parseSize("6G"), 6 * 1024 ** 3);
  assert.equal(parseSize("512MiB"), 512 * 1024 ** 2);
  assert.equal(parseSize("1.5g"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("4096"), 4096);
  for (const bad of ["", "six", "-1G", "0"]) assert.throws(() => parseSize(bad), (e: unknown) => e instanceof LoraDropError && e.code === "INVALID_ARGUMENT");
});
