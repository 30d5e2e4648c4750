/**
 * The engine choice as every entry point checks it: each engine's devices (webgpu is onnx's, mps is torch's), the
 * options of one engine refused with the other (a dtype or an interpreter with onnx; streaming, its memory budget
 * and prepacking with torch), launches checked, and how runs name their engine and device.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkEngineOptions, DEVICES_OF, type EngineFields } from "../../../../extension/core/torch/engineOptions";
import { ENGINE_CHOICES, ENGINE_DEVICES, engineLabel, runLabel } from "../../../../extension/core/torch/engineChoice";
import { profileRunLabel } from "../../../../extension/core/importance/profileSchema";
import { isLoraDropError } from "../../../../extension/core/util/errors";

const refused = (o: EngineFields, field: string, what: RegExp) => assert.throws(() => checkEngineOptions(o),
  (e: unknown) => isLoraDropError(e) && e.code === "INVALID_ARGUMENT" && e.field === field && what.test(e.message), JSON.stringify(o));

test("each engine runs on its own devices; the default is onnx on auto", () => {
  assert.equal(checkEngineOptions({}), "onnx");
  for (const engine of ENGINE_CHOICES) for (const device of DEVICES_OF[engine]) assert.equal(checkEngineOptions({ engine, device }), engine);
  assert.deepEqual([...new Set([...DEVICES_OF.onnx, ...DEVICES_OF.torch])].sort(), [...ENGINE_DEVICES].sort(), "every device belongs to an engine");
  refused({ engine: "torch", device: "webgpu" }, "device", /^the torch engine runs on auto, cuda, mps, cpu, not "webgpu"; webgpu is the onnx engine's \(choose engine onnx\)$/);
  refused({ device: "mps" }, "device", /mps is the torch engine's \(choose engine torch\)/);
  refused({ engine: "torch", device: "tpu" }, "device", /not "tpu"$/);
  refused({ engine: "jax" as "torch" }, "engine", /engine must be one of onnx, torch, got "jax"/);
});

test("options of the other engine are refused, naming the option", () => {
  refused({ dtype: "bfloat16" }, "dtype", /dtype is an option of the torch engine/);
  refused({ python: "/usr/bin/python3" }, "python", /choose engine torch/);
  refused({ launch: { kind: "local", nprocPerNode: 2 } }, "launch", /launch is an option of the torch engine/);
  assert.equal(checkEngineOptions({ launch: { kind: "single" }, stream: "on", prepack: true, memoryBudget: 1 }), "onnx");
  refused({ engine: "torch", stream: "on" }, "stream", /layer streaming is the onnx engine's/);
  refused({ engine: "torch", prepack: true }, "prepack", /prepacking/);
  refused({ engine: "torch", memoryBudget: 1 << 30 }, "memoryBudget", /memory budget/);
  refused({ engine: "torch", dtype: "int8" as "float16" }, "dtype", /dtype must be one of float32, bfloat16, float16/);
  refused({ engine: "torch", launch: { kind: "torchrun", nprocPerNode: 2, nnodes: 2 } }, "master-addr", /needed for a run on 2 nodes/);
  assert.equal(checkEngineOptions({ engine: "torch", stream: "auto", dtype: "float16", python: "py", launch: { kind: "local", nprocPerNode: 2 } }), "torch");
});

test("runs name their engine and device; profiles without an engine field are onnx ones", () => {
  assert.equal(engineLabel("torch", "cuda", "bfloat16"), "torch cuda bfloat16");
  assert.equal(runLabel("cpu"), "onnx cpu");
  assert.equal(runLabel("webgpu (streamed)"), "onnx webgpu (streamed)");
  assert.equal(runLabel("torch cpu float32"), "torch cpu float32");
  assert.equal(profileRunLabel({ device: "cpu" }), "onnx cpu");
  assert.equal(profileRunLabel({ device: "torch mps float16", engine: "torch" }), "torch mps float16");
});
