/**
 * A checkpoint's state.json read back: a valid state passes unchanged; each field null, of the wrong type or out of
 * range is CONFIG_INVALID naming the file and that field (never a TypeError); damaged optimiser moments are
 * NUMERICAL naming the tensor before any of them reaches a weight.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCheckpointState, CHECKPOINT_VERSION } from "../../../../extension/core/train/checkpointState";
import { restoreTensors } from "../../../../extension/core/train/checkpoint";
import { AdamW } from "../../../../extension/core/train/optim";
import { LoraDropError } from "../../../../extension/core/util/errors";

const valid = {
  version: CHECKPOINT_VERSION, step: 2, totalSteps: 4, fingerprint: { lr: 0.001 }, dataRng: 123, dropoutRng: 4294967295, epoch: 0,
  order: [2, 0, 3, 1], position: 2, adamStep: 2, losses: [{ step: 1, loss: 3.5, lr: 0.001 }, { step: 2, loss: 3.1, lr: 0.001 }], tokens: 40,
};

test("a valid state passes unchanged", () => {
  assert.deepEqual(parseCheckpointState("s.json", structuredClone(valid)), valid);
});

test("each damaged field is CONFIG_INVALID naming the file and the field", () => {
  const cases: [string, unknown][] = [
    ["step", null], ["step", "2"], ["step", 5], ["step", 1.5], ["totalSteps", 0], ["fingerprint", null], ["fingerprint", []], ["dataRng", -1], ["dataRng", 2 ** 32],
    ["dropoutRng", "7"], ["epoch", -1], ["order", null], ["order", [0, 0, 1, 2]], ["order", [1, 2, 3, 4]], ["order", []], ["position", 5], ["position", null],
    ["adamStep", 3], ["losses", null], ["losses", [{ step: 1, loss: null, lr: 0.1 }]], ["losses", [{ step: 9, loss: 1, lr: 0.1 }]], ["tokens", -1], ["tokens", "40"],
  ];
  for (const [field, v] of cases) {
    assert.throws(() => parseCheckpointState("/c/state.json", { ...valid, [field]: v }), (e: unknown) =>
      e instanceof LoraDropError && e.code === "CONFIG_INVALID" && e.file === "/c/state.json" && e.field?.startsWith(field) === true && e.message.includes(`checkpoint field ${field}`), `${field}: ${JSON.stringify(v)}`);
  }
  assert.throws(() => parseCheckpointState("/c/state.json", null), (e: unknown) => e instanceof LoraDropError && e.code === "CONFIG_INVALID");
  assert.throws(() => parseCheckpointState("/c/state.json", { ...valid, version: 2 }), /checkpoint version 2 is not supported/);
});

test("NaN, Inf or a negative second moment in the checkpoint is NUMERICAL naming the tensor", () => {
  const param = { name: "L0.q_proj", r: 1, inFeatures: 2, outFeatures: 2, A: new Float32Array(2), B: new Float32Array(2) };
  const ok = () => new Map([["param.L0.q_proj.A", Float32Array.of(1, 2)], ["param.L0.q_proj.B", Float32Array.of(3, 4)], ["adam.m.L0.q_proj.A", Float32Array.of(0.1, 0.2)],
    ["adam.v.L0.q_proj.A", Float32Array.of(0.01, 0.02)], ["adam.m.L0.q_proj.B", Float32Array.of(0, 0)], ["adam.v.L0.q_proj.B", Float32Array.of(0, 0)]]);
  const adam = new AdamW();
  restoreTensors({ state: { ...valid }, tensors: ok() }, new Map([[param.name, param]]), adam, "t.safetensors");
  assert.deepEqual([...param.A], [1, 2]);
  assert.equal(adam.step, 2);
  for (const [key, value] of [["adam.v.L0.q_proj.A", -0.5], ["adam.m.L0.q_proj.B", NaN], ["param.L0.q_proj.B", Infinity]] as const) {
    const tensors = ok();
    tensors.get(key)![1] = value;
    assert.throws(() => restoreTensors({ state: { ...valid }, tensors }, new Map([[param.name, { ...param }]]), new AdamW(), "/c/t.safetensors"),
      (e: unknown) => e instanceof LoraDropError && e.code === "NUMERICAL" && e.file === "/c/t.safetensors" && e.field === key && e.message.includes(`${key}[1] is ${value}`));
  }
});
