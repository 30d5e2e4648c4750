/**
 * Recomputing the MLP up projections in the backward pass (ForwardOptions.recomputeUp) trades time for memory and
 * changes no number: the training graph with it gives the loss and every LoRA gradient of the graph without it
 * (LoRA on the up projection itself included, so the recomputed copy carries a LoRA branch), and trainLora turns it
 * on exactly when the memory budget holds the weights but not the weights and every saved activation, logging why,
 * with the same step losses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { makeBatch } from "../../../extension/core/data/batch";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { LossSession, LoraParam, buildTrainGraph, countTargets } from "../../../extension/core/runtime/lossSession";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { trainLora } from "../../../extension/core/train/train";
import type { TrainOptions } from "../../../extension/core/train/settings";
import { planStreaming, wholeTrainingActivationBytes } from "../../../extension/core/stream/memoryBudget";
import { makeFixture, maxRelErr } from "../../helpers";

const TARGETS = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"];

function setup() {
  const fx = makeFixture({ tokenizer: false, numLayers: 3, numKvHeads: 2 }, { targets: TARGETS });
  const data = path.join(fx.root, "ids.jsonl");
  const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: 14 - (i % 3) }, (_, t) => 1 + ((i * 13 + t * 5) % 250)) }));
  fs.writeFileSync(data, lines.join("\n") + "\n");
  return { ...fx, data };
}

test("the training graph with the up projections recomputed gives the same loss and LoRA gradients", async () => {
  const fx = setup();
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const params = new Map<string, LoraParam>(loras.map((l) => [l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B }]));
  const ids = [[1, 45, 66, 29, 33, 26, 7, 90], [1, 31, 181, 5]];
  const batch = makeBatch(ids.map((s, i) => ({ ids: s, tokens: s.map(String), special: s.map(() => false), lossMask: s.map((_, t) => t > 0), example: i })));
  const results = [];
  for (const recomputeUp of [false, true]) {
    const session = await LossSession.create(model, loras.map(slotOf), { gradients: true, dropout: false, device: "cpu", recomputeUp });
    try {
      results.push(await session.run(batch, countTargets(batch), params));
    } finally {
      await session.session.release();
    }
  }
  const [kept, recomputed] = results as [typeof results[0], typeof results[0]];
  // The marked graph holds the copies: one up projection (and its LoRA branch) more per layer, at least.
  const nodes = (recomputeUp: boolean) => {
    const g = new GraphBuilder();
    buildTrainGraph(g, model, loras.map(slotOf), { gradients: true, dropout: false, recomputeUp });
    return g.nodes.length;
  };
  assert.ok(nodes(true) >= nodes(false) + model.config.numLayers, `${nodes(true)} nodes vs ${nodes(false)}`);
  assert.ok(Math.abs(kept.loss - recomputed.loss) <= 1e-6 * Math.abs(kept.loss), `loss ${recomputed.loss} vs ${kept.loss}`);
  assert.equal(recomputed.grads!.size, kept.grads!.size);
  assert.ok(kept.grads!.size === loras.length && loras.some((l) => l.module === "up_proj"));
  for (const [name, g] of kept.grads!) {
    const r = recomputed.grads!.get(name)!;
    const a = maxRelErr(r.A, g.A).err, b = maxRelErr(r.B, g.B).err;
    assert.ok(a < 1e-5 && b < 1e-5, `${name}: A ${a}, B ${b}`);
  }
});

test("trainLora recomputes the up projections only when the budget holds the weights but not every activation", async () => {
  const fx = setup();
  const cfg = loadHfModel(fx.modelDir).config;
  // One micro-batch of 2 sequences padded to 14 tokens, all 3 layers.
  const shape = { batch: 2, seq: 14, totalTokens: 28, layers: 3 };
  const weights = planStreaming(cfg, shape, Infinity, "off").needed;
  const keep = weights + wholeTrainingActivationBytes(cfg, shape, false);
  const recompute = weights + wholeTrainingActivationBytes(cfg, shape, true);
  assert.ok(recompute < keep, `${recompute} < ${keep}`);
  const base: TrainOptions = { modelDir: fx.modelDir, dataPath: fx.data, outDir: "", targets: TARGETS, steps: 3, lr: 1e-2, batchSize: 2, warmupSteps: 1, device: "cpu", stream: "auto" };
  const run = async (name: string, memoryBudget: number) => {
    const infos: string[] = [];
    const r = await trainLora({ ...base, outDir: path.join(fx.root, name), memoryBudget }, { log: { info: (m: string) => infos.push(m), warn: () => {} } });
    return { r, line: infos.find((m) => /recomputing the MLP up projections/.test(m)) };
  };
  const roomy = await run("roomy", keep);
  assert.equal(roomy.line, undefined, "a budget that holds every activation keeps them");
  const tight = await run("tight", keep - 1);
  assert.match(tight.line ?? "", /needs ~.* of the .* memory budget/);
  assert.doesNotMatch(tight.r.device, /streamed/, "the weights fit: the whole graph runs");
  assert.deepEqual(tight.r.losses.map((l) => l.step), roomy.r.losses.map((l) => l.step));
  tight.r.losses.forEach((l, i) => assert.ok(Math.abs(l.loss - roomy.r.losses[i]!.loss) <= 1e-5 * Math.abs(l.loss), `step ${l.step}: ${l.loss} vs ${roomy.r.losses[i]!.loss}`));
});
