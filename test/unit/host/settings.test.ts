/**
 * The extension's settings: valid values pass, invalid ones fall back to their defaults and are named; sizes and
 * streaming as the engine takes them; the engine, its interpreter and dtype, and what a job carries of them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { engineOf, memoryBudgetBytes, precisionOf, readSettings, streamingOf } from "../../../extension/host/settings";

test("settings: valid values pass, invalid ones fall back to the default and are named", () => {
  const values: Record<string, unknown> = { device: "cuda", threshold: 0.75, maxExamples: 3, mode: "drop", "train.targetModules": ["q_proj", "o_proj"] };
  const ok = readSettings((k) => values[k]);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.settings.device, "cuda");
  assert.equal(ok.settings.threshold, 0.75);
  assert.equal(ok.settings.maxExamples, 3);
  assert.equal(ok.settings.mode, "drop");
  assert.deepEqual(ok.settings.train.targetModules, ["q_proj", "o_proj"]);
  const bad: Record<string, unknown> = { device: "tpu", threshold: 0, sampleFraction: 1.5, maxTokens: 2.5, outputFormat: "gguf", "train.targetModules": [], "train.learningRate": -1 };
  const r = readSettings((k) => bad[k]);
  assert.equal(r.problems.length, 7);
  assert.equal(r.settings.device, "auto");
  assert.equal(r.settings.threshold, 0.9);
  assert.equal(r.settings.sampleFraction, 0.1);
  assert.equal(r.settings.maxTokens, 128);
  assert.equal(r.settings.outputFormat, "peft");
  assert.deepEqual(r.settings.train.targetModules, ["q_proj", "v_proj"]);
  assert.match(r.problems.join("\n"), /loraDrop\.device = "tpu"/);
});

test("settings: the memory budget takes the engine's sizes, blank is automatic; streaming is auto, on or off", () => {
  const read = (values: Record<string, unknown>) => readSettings((k) => values[k]);
  const defaults = read({});
  assert.equal(defaults.settings.memoryBudget, undefined, "automatic by default");
  assert.equal(defaults.settings.stream, "auto");
  assert.deepEqual(streamingOf(defaults.settings), { stream: "auto" }, "no budget field when automatic");
  const sizes: [string, number][] = [["6G", 6 * 1024 ** 3], ["1500M", 1500 * 1024 ** 2], ["1.5GiB", 1.5 * 1024 ** 3], [" 512k ", 512 * 1024], ["4096", 4096], ["2tb", 2 * 1024 ** 4]];
  for (const [text, bytes] of sizes) {
    const r = read({ memoryBudget: text, stream: "on" });
    assert.deepEqual(r.problems, [], text);
    assert.equal(r.settings.memoryBudget, bytes, text);
    assert.deepEqual(streamingOf(r.settings), { memoryBudget: bytes, stream: "on" });
  }
  assert.deepEqual(read({ memoryBudget: "   ", stream: "off" }), { settings: { ...defaults.settings, stream: "off" }, problems: [] }, "blank is automatic, not a problem");
  for (const bad of ["6 gigs", "0", "0.0001", "-1G", "G", "1e9", "6GB6", "99999999999T", 6442450944, ["6G"]]) {
    const r = read({ memoryBudget: bad });
    assert.equal(r.settings.memoryBudget, undefined, String(bad));
    assert.equal(r.problems.length, 1, String(bad));
    assert.match(r.problems[0]!, /^loraDrop\.memoryBudget = .* is not valid; using ""$/);
  }
  for (const bad of ["yes", "ON", true, 1]) {
    const r = read({ stream: bad });
    assert.equal(r.settings.stream, "auto");
    assert.match(r.problems.join(), /loraDrop\.stream = /);
  }
  assert.equal(memoryBudgetBytes("1.5GiB"), 1610612736);
  assert.equal(memoryBudgetBytes("nope"), undefined);
});

test("settings: the engine, the torch engine's interpreter and dtype; a torch job carries them and no streaming fields", () => {
  const read = (values: Record<string, unknown>) => readSettings((k) => values[k]);
  const torch = read({ engine: "torch", pythonPath: " /opt/venv/bin/python ", dtype: "bfloat16", device: "mps", memoryBudget: "6G", stream: "on" });
  assert.deepEqual(torch.problems, []);
  assert.deepEqual([torch.settings.engine, torch.settings.pythonPath, torch.settings.dtype, torch.settings.device], ["torch", "/opt/venv/bin/python", "bfloat16", "mps"]);
  assert.deepEqual(streamingOf(torch.settings), {}, "the memory budget and streaming bound the onnx engine only");
  assert.deepEqual(engineOf(torch.settings, "/opt/venv/bin/python"), { engine: "torch", dtype: "bfloat16", python: "/opt/venv/bin/python" });
  assert.deepEqual(engineOf(torch.settings, undefined), { engine: "torch", dtype: "bfloat16" }, "no interpreter: the engine's default");
  const onnx = read({ dtype: "float16", pythonPath: "/x" });
  assert.deepEqual(engineOf(onnx.settings, "/x"), { engine: "onnx" }, "an onnx job carries no torch options");
  const bad = read({ engine: "jax", dtype: "int8", pythonPath: "a\nb" });
  assert.deepEqual([bad.settings.engine, bad.settings.dtype, bad.settings.pythonPath], ["onnx", "float32", ""]);
  assert.equal(bad.problems.length, 3);
  assert.match(bad.problems.join("\n"), /loraDrop\.engine = "jax" is not valid; using "onnx"/);
});

test("settings: the precision is fp32 unless set to int8 or int4; an unknown one falls back and is named", () => {
  assert.deepEqual(precisionOf(readSettings(() => undefined).settings), { precision: "fp32" });
  assert.deepEqual(precisionOf(readSettings((k) => (k === "precision" ? "int8" : undefined)).settings), { precision: "int8" });
  const bad = readSettings((k) => (k === "precision" ? "int2" : undefined));
  assert.equal(bad.settings.precision, "fp32");
  assert.deepEqual(bad.problems, ['loraDrop.precision = "int2" is not valid; using "fp32"']);
});
