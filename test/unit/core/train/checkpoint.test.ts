/**
 * Training checkpoints: written and read back exactly (state, LoRA values, AdamW moments, a trained head), a later
 * checkpoint replaces an earlier one, and damaged ones are refused with the file named.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { CHECKPOINT_VERSION, readCheckpoint, restoreTensors, writeCheckpoint, type CheckpointState } from "../../../../extension/core/train/checkpoint";
import { AdamW } from "../../../../extension/core/train/optim";
import type { HeadParam, LoraParam } from "../../../../extension/core/runtime/lossSession";
import { Rng, normalArray } from "../../../../extension/core/util/random";
import { isLoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

function params(rng: Rng): Map<string, LoraParam> {
  const p = (name: string, r: number, inF: number, outF: number): LoraParam => ({ name, r, inFeatures: inF, outFeatures: outF, A: normalArray(rng, r * inF, 1), B: normalArray(rng, outF * r, 1) });
  return new Map([["L0.q_proj", p("L0.q_proj", 2, 8, 8)], ["shared.v_proj", p("shared.v_proj", 2, 8, 4)]]);
}

function state(step: number): CheckpointState {
  return {
    version: CHECKPOINT_VERSION, step, totalSteps: 10, fingerprint: { lr: 1e-3, seed: 1 }, dataRng: 123, dropoutRng: 456,
    epoch: 1, order: [3, 1, 0, 2], position: 2, adamStep: step, losses: [{ step: 1, loss: 2.5, lr: 1e-3 }], tokens: 99,
  };
}

test("a checkpoint reads back exactly and restores the LoRA values, the AdamW moments and the head", async () => {
  const rng = new Rng(1);
  const dir = path.join(tmpDir(), "run.checkpoint");
  const trained = params(rng);
  const head = new Map<string, HeadParam>([["classifier.weight", { name: "classifier.weight", shape: [2, 8], data: normalArray(rng, 16, 1) }]]);
  const adam = new AdamW();
  adam.beginStep();
  for (const p of trained.values()) {
    adam.update(`${p.name}.A`, p.A, normalArray(rng, p.A.length, 1), 1e-2);
    adam.update(`${p.name}.B`, p.B, normalArray(rng, p.B.length, 1), 1e-2);
  }
  await writeCheckpoint(dir, state(3), trained, adam, head);
  const cp = readCheckpoint(dir)!;
  assert.deepEqual(cp.state, state(3));

  const fresh = params(new Rng(99));
  const freshHead = new Map<string, HeadParam>([["classifier.weight", { name: "classifier.weight", shape: [2, 8], data: new Float32Array(16) }]]);
  const adam2 = new AdamW();
  restoreTensors(cp, fresh, adam2, dir, freshHead);
  for (const [k, p] of trained) {
    assert.deepEqual(fresh.get(k)!.A, p.A);
    assert.deepEqual(fresh.get(k)!.B, p.B);
  }
  assert.deepEqual(freshHead.get("classifier.weight")!.data, head.get("classifier.weight")!.data);
  assert.equal(adam2.step, 3);
  for (const [k, mo] of adam.moments) {
    assert.deepEqual(adam2.moments.get(k)!.m, mo.m);
    assert.deepEqual(adam2.moments.get(k)!.v, mo.v);
  }

  await writeCheckpoint(dir, state(6), trained, adam, head);
  assert.equal(readCheckpoint(dir)!.state.step, 6, "a later checkpoint replaces the earlier one");
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ["run.checkpoint"], "no temporaries are left beside it");
});

test("no checkpoint is undefined; a damaged one is refused naming the file", async () => {
  const root = tmpDir();
  assert.equal(readCheckpoint(path.join(root, "none")), undefined);
  const dir = path.join(root, "cp");
  await writeCheckpoint(dir, state(2), params(new Rng(2)), new AdamW());
  const stateFile = path.join(dir, "state.json");

  fs.writeFileSync(stateFile, JSON.stringify({ ...state(2), version: CHECKPOINT_VERSION + 1 }));
  assert.throws(() => readCheckpoint(dir), (e) => isLoraDropError(e) && e.code === "CONFIG_INVALID" && e.file === stateFile && /version/.test(e.message));
  fs.writeFileSync(stateFile, "{ not json");
  assert.throws(() => readCheckpoint(dir), (e) => isLoraDropError(e) && e.code === "CONFIG_INVALID" && e.file === stateFile);

  fs.writeFileSync(stateFile, JSON.stringify(state(2)));
  const cp = readCheckpoint(dir)!;
  const bigger = new Map([...params(new Rng(2))].map(([k, p]) => [k, { ...p, r: p.r + 1, A: new Float32Array((p.r + 1) * p.inFeatures), B: new Float32Array(p.outFeatures * (p.r + 1)) }]));
  assert.throws(() => restoreTensors(cp, bigger, new AdamW(), dir), (e) => isLoraDropError(e) && e.code === "SAFETENSORS_SHAPE_MISMATCH");
  const other = new Map([["L9.o_proj", { name: "L9.o_proj", r: 1, inFeatures: 1, outFeatures: 1, A: new Float32Array(1), B: new Float32Array(1) }]]);
  assert.throws(() => restoreTensors(cp, other, new AdamW(), dir), (e) => isLoraDropError(e) && e.code === "TENSOR_MISSING" && /L9\.o_proj\.A/.test(e.message));
});
