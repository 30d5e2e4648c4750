/**
 * Data-parallel torch training on the CPU: two processes joined by the env:// rendezvous (gloo), each taking half of
 * every micro-batch, against one process with the same global batch. The trained adapter — with LoRA-drop's shared
 * layers, whose gradients add up over layers and processes — agrees within 1e-5 of its scale, and so do the
 * losses and the gradient norms (AdamW hardly sees a gradient's scale, so the norms are what would show gradients
 * averaged instead of summed, or counted twice). The plan's last micro-batch of an epoch holds one example, so one rank's share of it is empty.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { torchTrain } from "../../../extension/core/train/torchTrain";
import type { TrainOptions } from "../../../extension/core/train/settings";
import { makeTorchFixtures, torchEnvOrSkip } from "../../torchEnv";
import { tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const quiet = { log: { info() {}, warn() {} } };

test("2-process data-parallel torch training equals 1 process with the same global batch (shared layers)", { skip }, async () => {
  const fx = makeTorchFixtures(env!, ["llama"]).llama;
  const dir = tmpDir();
  const gradNorms: Record<string, number[]> = { one: [], two: [] };
  const run = (name: "one" | "two", launch: TrainOptions["launch"]) => torchTrain({
    modelDir: fx.modelDir, dataPath: fx.dataFile, initAdapterDir: fx.adapterDir, outDir: path.join(dir, name), sharedLayers: [0, 2],
    steps: 4, batchSize: 3, gradAccum: 2, lr: 1e-2, warmupSteps: 1, weightDecay: 0.01, maxGradNorm: 1, seed: 3,
    device: "cpu", threads: 1, python: env!.python, env: env!.env, launch,
  }, { ...quiet, onStep: (e) => gradNorms[name]!.push(e.gradNorm) });
  const one = await run("one", { kind: "single" });
  const two = await run("two", { kind: "local", nprocPerNode: 2 });
  assert.equal(one.worldSize, 1);
  assert.equal(two.worldSize, 2);
  two.losses.forEach((l, i) => {
    const want = one.losses[i]!.loss;
    assert.ok(Math.abs(l.loss - want) <= 1e-5 * Math.abs(want), `step ${l.step}: loss ${l.loss} with 2 processes, ${want} with 1`);
  });
  gradNorms.two!.forEach((g, i) => {
    const want = gradNorms.one![i]!;
    assert.ok(Math.abs(g - want) <= 1e-5 * want, `step ${i + 1}: gradient norm ${g} with 2 processes, ${want} with 1`);
  });
  assert.ok([...one.tensors.keys()].some((k) => k.startsWith("shared.")), "the run trains shared pairs");
  for (const [k, want] of one.tensors) {
    const got = two.tensors.get(k)!;
    const scale = Math.max(...Array.from(want, Math.abs));
    let worst = 0;
    want.forEach((x, i) => { worst = Math.max(worst, Math.abs(got[i]! - x) / scale); });
    assert.ok(worst <= 1e-5, `${k} differs by ${worst} of its scale between 2 processes and 1`);
  }
});
