/**
 * The host's pure helpers: settings validation, command arguments, workspace candidates, progress increments,
 * error descriptions, profile heads, and the test-state mirror file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { memoryBudgetBytes, readSettings, streamingOf } from "../../extension/host/settings";
import { parseInvocation, parseThresholdInput, profileArgs, pruneArgs } from "../../extension/host/commandArgs";
import { classifyCandidates, rememberedFirst } from "../../extension/host/candidates";
import { ProgressTracker } from "../../extension/host/progressText";
import { phasedProgress } from "../../extension/core/util/progress";
import { describeError, UserError } from "../../extension/host/errorText";
import { latestProfileOf, parseProfileHead, readProfileHead } from "../../extension/host/profileIndex";
import { TestState } from "../../extension/host/testApi";
import { CancelledError, deserializeError, LoraDropError, serializeError } from "../../extension/core/util/errors";
import { tmpDir } from "../helpers";

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

test("command arguments: palette, Explorer selection, options object", () => {
  assert.deepEqual(parseInvocation([]), { resources: [], options: {} });
  const uri = (p: string) => ({ scheme: "file", fsPath: p });
  assert.deepEqual(parseInvocation([uri("/a"), [uri("/a"), uri("/b")]]), { resources: ["/a", "/b"], options: {} });
  assert.deepEqual(parseInvocation([{ adapter: "/x" }]).options, { adapter: "/x" });
  assert.throws(() => parseInvocation([42]), UserError);
  assert.deepEqual(pruneArgs({ adapter: "/x", threshold: 0.5, mode: "drop", overwrite: true }), { adapter: "/x", threshold: 0.5, mode: "drop", overwrite: true });
  assert.throws(() => pruneArgs({ threshold: 0 }), /Invalid option threshold/);
  assert.throws(() => pruneArgs({ mode: "keep" }), /Invalid option mode/);
  assert.throws(() => profileArgs({ maxTokens: -3 }), /Invalid option maxTokens/);
  assert.equal(parseThresholdInput(" 0,85 "), 0.85);
  assert.equal(parseThresholdInput("1"), 1);
  for (const bad of ["", "0", "1.01", "abc", "-0.5"]) assert.equal(typeof parseThresholdInput(bad), "string", bad);
});

test("workspace candidates: model folders, adapter folders, datasets", () => {
  const files = [
    "/w/model/config.json", "/w/model/model.safetensors", "/w/model/tokenizer.json",
    "/w/cfg-only/config.json",
    "/w/ad/adapter_config.json", "/w/ad/adapter_model.safetensors", "/w/ad/config.json",
    "/w/data/train.txt", "/w/data/train.jsonl", "/w/model/merges.txt", "/w/tok/vocab.txt", "/w/.lora-drop/sample.jsonl",
  ];
  const c = classifyCandidates(files, ["/w/.lora-drop"]);
  assert.deepEqual(c.models, ["/w/model"]);
  assert.deepEqual(c.adapters, ["/w/ad"]);
  assert.deepEqual(c.datasets, ["/w/data/train.jsonl", "/w/data/train.txt"]);
  assert.deepEqual(rememberedFirst(["/a", "/b", "/c"], "/c"), ["/c", "/a", "/b"]);
  assert.deepEqual(rememberedFirst(["/a"], "/gone"), ["/a"]);
  assert.deepEqual(rememberedFirst(["/a"], "/elsewhere", true), ["/elsewhere", "/a"]);
});

test("progress: increments add up to the percentage reached, never negative", () => {
  const t = new ProgressTracker();
  const steps = [[1, 4], [2, 4], [2, 4], [1, 4], [4, 4]].map(([step, total]) => t.next({ step: step!, total: total!, tokensPerSecond: 1234.4 }));
  assert.deepEqual(steps.map((s) => s.increment), [25, 25, 0, 0, 50]);
  assert.equal(steps.reduce((a, s) => a + s.increment, 0), 100);
  assert.match(steps[0]!.message, /^25% · 1,234 tok\/s$/);
});

test("phased progress: each of the pipeline's phases is an equal slice of the whole", () => {
  const u = phasedProgress(2, 8, { step: 30, total: 60, message: "30/60 tokens", tokensPerSecond: 5 }, "profile");
  assert.equal(u.step / u.total, 2.5 / 8);
  assert.equal(u.message, "profile: 30/60 tokens");
  assert.equal(u.tokensPerSecond, 5);
  assert.equal(phasedProgress(7, 8, { step: 9, total: 9 }, "report").step, 8000);
  assert.equal(phasedProgress(0, 8, { step: 5, total: 0 }, "sample").step, 1000, "a phase with no total counts as done");
});

test("errors: engine errors keep code, file and field across the process boundary; cancellation is not an error", () => {
  const e = new LoraDropError("ADAPTER_INVALID", "r must be a positive integer", "/w/ad/adapter_config.json", "r");
  const back = deserializeError(JSON.parse(JSON.stringify(serializeError(e))));
  assert.ok(back instanceof LoraDropError);
  assert.equal(back.message, e.message);
  assert.equal((back as LoraDropError).code, "ADAPTER_INVALID");
  assert.equal((back as LoraDropError).file, "/w/ad/adapter_config.json");
  const d = describeError("Prune adapter", back);
  assert.equal(d.message, "Prune adapter failed: /w/ad/adapter_config.json: r must be a positive integer (field r)");
  assert.equal(d.cancelled, false);
  assert.equal(describeError("Prune adapter", back, (f) => path.relative("/w", f)).message, "Prune adapter failed: ad/adapter_config.json: r must be a positive integer (field r)");
  assert.equal(describeError("Profile", deserializeError(serializeError(new CancelledError("profile")))).cancelled, true);
  assert.equal(describeError("Open profile", new UserError("Open a folder first.")).message, "Open profile: Open a folder first.");
  const bug = describeError("Train", new TypeError("x is undefined"));
  assert.match(bug.detail, /TypeError: x is undefined\n\s+at /, "a bug keeps its stack for the log");
});

test("profile heads: the adapter path is read from the head of a compact profile", () => {
  const head = `{"schema":"lora-drop.profile","version":1,"created":"x","criterion":"output","device":"cpu","model":{"path":"/m"},"adapter":{"path":"/w/a \\"q\\"","r":8`;
  assert.deepEqual(parseProfileHead(head, "f", 5), { file: "f", adapterPath: '/w/a "q"', mtimeMs: 5 });
  assert.equal(parseProfileHead(head.replace("lora-drop.profile", "other"), "f", 5), undefined);
  const heads = [
    { file: "old", adapterPath: "/w/a", mtimeMs: 1 },
    { file: "new", adapterPath: "/w/a/", mtimeMs: 3 },
    { file: "other", adapterPath: "/w/b", mtimeMs: 9 },
  ];
  assert.equal(latestProfileOf(heads, "/w/a")?.file, "new");
  assert.equal(latestProfileOf(heads, "/w/c"), undefined);
  const dir = tmpDir();
  const file = path.join(dir, "p.json");
  fs.writeFileSync(file, head + "}}");
  assert.equal(readProfileHead(file)?.adapterPath, '/w/a "q"');
  assert.equal(readProfileHead(path.join(dir, "missing.json")), undefined);
});

test("test state: mirrored to the file, revision increases, whenIdle waits for running commands", async () => {
  const file = path.join(tmpDir(), "state.json");
  const state = new TestState(file);
  const api = state.api();
  state.commandStarted("loraDrop.profile");
  let idle = false;
  const waiting = api.whenIdle().then(() => (idle = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, false);
  state.update((s) => (s.lastProfilePath = "/w/p.json"));
  state.commandFinished("loraDrop.profile", "ok");
  await waiting;
  const onDisk = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.equal(onDisk.lastProfilePath, "/w/p.json");
  assert.deepEqual(onDisk.finished, [{ command: "loraDrop.profile", outcome: "ok" }]);
  assert.equal(onDisk.revision, 3);
  assert.equal(api.lastProfilePath(), "/w/p.json");
});
