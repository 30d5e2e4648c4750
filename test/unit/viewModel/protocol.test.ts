import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { isSafeExportName, MAX_EXPORT_CHARS, parseHostMessage, parseWebviewMessage } from "../../../extension/viewModel/protocol";
import { exportFileName } from "../../../extension/viewModel/exportNames";
import { makeProfile } from "./fixtures";

const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

test("parseWebviewMessage accepts each well-formed message", () => {
  const messages = [
    { type: "ready" },
    { type: "applyPrune", requestId: 1, threshold: 0.9, mode: "share" },
    { type: "applyPrune", requestId: 2, threshold: 1, mode: "drop" },
    { type: "export", requestId: 3, format: "csv", fileName: "profile-heatmap-all-seq0.csv", content: "a,b\r\n1,2\r\n" },
    { type: "export", requestId: 4, format: "png", fileName: "heatmap.png", content: png },
    { type: "export", requestId: 5, format: "svg", fileName: "importance.svg", content: "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>" },
    { type: "stateChanged", threshold: 0.5, mode: "share" },
    { type: "pickCompareProfile" },
    { type: "webviewError", message: "boom" },
  ];
  for (const m of messages) assert.deepEqual(parseWebviewMessage(m), m);
});

test("parseWebviewMessage rejects thresholds outside (0, 1] and non-numbers", () => {
  for (const threshold of [0, -0.1, 1.0000001, Number.NaN, Number.POSITIVE_INFINITY, "0.5", null]) {
    assert.equal(parseWebviewMessage({ type: "applyPrune", requestId: 1, threshold, mode: "share" }), undefined, String(threshold));
  }
  assert.equal(parseWebviewMessage({ type: "applyPrune", requestId: 1, threshold: 0.5, mode: "merge" }), undefined);
  assert.equal(parseWebviewMessage({ type: "applyPrune", requestId: -1, threshold: 0.5, mode: "share" }), undefined);
  assert.equal(parseWebviewMessage({ type: "applyPrune", threshold: 0.5, mode: "share" }), undefined);
});

test("parseWebviewMessage rejects export names that could leave the chosen folder or hide their type", () => {
  const bad = ["../x.csv", "a/b.csv", "a\\b.csv", "C:x.csv", ".csv", ".hidden.csv", "x.png", "x.csv.exe", "x\u202Evsc.csv", "x\n.csv", " x.csv", "a..b.csv", "", "x".repeat(130) + ".csv"];
  for (const fileName of bad) {
    assert.equal(parseWebviewMessage({ type: "export", requestId: 1, format: "csv", fileName, content: "" }), undefined, JSON.stringify(fileName));
  }
});

test("parseWebviewMessage checks export content against its format and size", () => {
  const msg = (format: string, fileName: string, content: unknown) => parseWebviewMessage({ type: "export", requestId: 1, format, fileName, content });
  assert.equal(msg("png", "a.png", "data:image/svg+xml;base64,AAAA"), undefined);
  assert.equal(msg("png", "a.png", png + "<"), undefined);
  assert.equal(msg("svg", "a.svg", "<svg><script>alert(1)</script></svg>"), undefined);
  assert.equal(msg("svg", "a.svg", "<html></html>"), undefined);
  assert.equal(msg("csv", "a.csv", 42), undefined);
  assert.equal(msg("csv", "a.csv", "x".repeat(MAX_EXPORT_CHARS + 1)), undefined);
  assert.notEqual(msg("csv", "a.csv", "x".repeat(1000)), undefined);
});

test("parseWebviewMessage rejects unknown types and non-objects", () => {
  for (const x of [null, undefined, 3, "ready", [], { type: "eval" }, { type: "__proto__" }]) assert.equal(parseWebviewMessage(x), undefined);
});

test("exportFileName always yields a name the protocol accepts", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.integer()), { maxLength: 4 }), fc.constantFrom("csv", "png", "svg" as const), (path, parts, format) => {
      const name = exportFileName(path, parts, format);
      assert.ok(isSafeExportName(name, format), name);
    }),
  );
  assert.equal(exportFileName("/runs/llama-3 out/profile.json", ["heatmap", "q_proj", "seq2"], "png"), "profile-heatmap-q_proj-seq2.png");
  assert.equal(exportFileName("C:\\x\\..\\evil.json", ["../../etc"], "csv"), "evil-etc.csv");
});

test("parseHostMessage accepts a generated profile and the other host messages", () => {
  const profile = makeProfile();
  const m = { type: "profile", slot: "primary", profile, sourcePath: "/tmp/p.json" };
  assert.deepEqual(parseHostMessage(m), m);
  const others = [
    { type: "settings", threshold: 0.75, mode: "drop" },
    { type: "settings", threshold: 1, mode: "share" },
    { type: "clearCompare" },
    { type: "trainProgress", step: 3, totalSteps: 100, loss: 2.5, lr: 1e-4, tokensPerSecond: 1234.5 },
    { type: "trainDone", outcome: "completed" },
    { type: "trainDone", outcome: "failed", message: "out of memory" },
    { type: "pruneResult", requestId: 1, threshold: 0.9, mode: "share", keptLayers: [0, 2], paramsBefore: 100, paramsAfter: 60, outputPath: "/tmp/out" },
    { type: "exportDone", requestId: 2, savedPath: "/tmp/a.csv" },
    { type: "exportDone", requestId: 2 },
    { type: "error", message: "bad", requestId: 4 },
    { type: "error", message: "bad" },
  ];
  for (const o of others) assert.deepEqual(parseHostMessage(o), o);
});

test("parseHostMessage rejects profiles whose arrays disagree with their declared shape", () => {
  const cases: [string, (p: ReturnType<typeof makeProfile>) => void][] = [
    ["short norms row", (p) => p.norms!["q_proj"]![0]![0]!.pop()],
    ["NaN norm", (p) => (p.norms!["q_proj"]![1]![0]![0] = Number.NaN)],
    ["negative norm", (p) => (p.norms!["v_proj"]![1]![1]![0] = -1)],
    ["missing module norms", (p) => delete p.norms!["v_proj"]],
    ["importance length", (p) => p.importance.per_layer.push(0)],
    ["special length", (p) => p.sequences[1]!.special.pop()],
    ["token not a string", (p) => ((p.sequences[0]!.tokens as unknown[])[0] = 5)],
    ["params not counts", (p) => (p.adapter.params["q_proj"]![0] = 1.5)],
    ["wrong version", (p) => ((p as { version: number }).version = 2)],
    ["duplicate modules", (p) => (p.modules = ["q_proj", "q_proj"])],
  ];
  for (const [name, corrupt] of cases) {
    const profile = makeProfile();
    corrupt(profile);
    assert.equal(parseHostMessage({ type: "profile", slot: "primary", profile, sourcePath: "p.json" }), undefined, name);
  }
  const noNorms = makeProfile({ criterion: "gradient" });
  delete noNorms.norms;
  assert.notEqual(parseHostMessage({ type: "profile", slot: "compare", profile: noNorms, sourcePath: "g.json" }), undefined);
});

test("parseHostMessage rejects malformed training and prune messages", () => {
  assert.equal(parseHostMessage({ type: "trainProgress", step: 1.5, totalSteps: 10, loss: 1, lr: 0, tokensPerSecond: 0 }), undefined);
  assert.equal(parseHostMessage({ type: "trainProgress", step: 1, totalSteps: 10, loss: Number.NaN, lr: 0, tokensPerSecond: 0 }), undefined);
  assert.equal(parseHostMessage({ type: "trainDone", outcome: "exploded" }), undefined);
  assert.equal(parseHostMessage({ type: "pruneResult", requestId: 1, threshold: 0, mode: "share", keptLayers: [], paramsBefore: 1, paramsAfter: 1, outputPath: "" }), undefined);
  assert.equal(parseHostMessage({ type: "profile", slot: "third", profile: makeProfile(), sourcePath: "" }), undefined);
});

test("parseHostMessage rejects settings with a threshold outside (0, 1] or an unknown mode, and drops extra fields", () => {
  for (const threshold of [0, -0.5, 1.01, Number.NaN, Number.POSITIVE_INFINITY, "0.5", null, undefined]) {
    assert.equal(parseHostMessage({ type: "settings", threshold, mode: "share" }), undefined, String(threshold));
  }
  for (const mode of ["merge", "", null, undefined, 1]) assert.equal(parseHostMessage({ type: "settings", threshold: 0.5, mode }), undefined, String(mode));
  assert.deepEqual(parseHostMessage({ type: "settings", threshold: 0.5, mode: "share", extra: "<img>" }), { type: "settings", threshold: 0.5, mode: "share" });
});

test("parseHostMessage: an ablation profile may carry negative raw importance; other criteria may not", () => {
  const p = makeProfile({ criterion: "ablation" });
  const signed = { ...p, ablation: { full_loss: 2.5, per_module: false }, importance: { ...p.importance, per_layer_raw: p.importance.per_layer_raw.map((v, i) => (i === 1 ? -0.01 : v)) } };
  assert.ok(parseHostMessage({ type: "profile", slot: "compare", profile: signed, sourcePath: "a.json" }));
  assert.equal(parseHostMessage({ type: "profile", slot: "compare", profile: { ...signed, criterion: "output" }, sourcePath: "a.json" }), undefined);
  assert.equal(parseHostMessage({ type: "profile", slot: "compare", profile: { ...signed, ablation: { full_loss: "2.5", per_module: false } }, sourcePath: "a.json" }), undefined);
  const negativeShare = { ...signed, importance: { ...signed.importance, per_layer: signed.importance.per_layer.map((v, i) => (i === 1 ? -0.01 : v)) } };
  assert.equal(parseHostMessage({ type: "profile", slot: "compare", profile: negativeShare, sourcePath: "a.json" }), undefined, "normalised importance is never negative");
});
