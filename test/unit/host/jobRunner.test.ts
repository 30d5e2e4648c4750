/**
 * The worker process: a profile run there equals the same run in-process, cancel stops it (and a worker that
 * ignores cancel is killed), engine errors arrive with their code and file, a crash becomes a clear error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runJob } from "../../../extension/host/jobRunner";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { isLoraDropError } from "../../../extension/core/util/errors";
import type { ProgressUpdate } from "../../../extension/core/util/progress";
import { makeFixture, tmpDir } from "../../helpers";

const fx = makeFixture({}, {}, { count: 24 });

test("a profile in the worker equals the same profile run in this process", async () => {
  const outFile = path.join(fx.root, "out", "worker.profile.json");
  const updates: ProgressUpdate[] = [];
  const result = await runJob(
    { kind: "profile", modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 12, maxTokens: 24, device: "cpu", outFile, threshold: 0.9 },
    { progress: (u) => updates.push(u), env: { ORT_DISABLE_TELEMETRY: "1" } },
  );
  const inProcess = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 12, maxTokens: 24, device: "cpu" });
  const fromWorker = readProfile(outFile);
  assert.equal(result.profilePath, outFile);
  assert.equal(result.sequences, 12);
  assert.equal(result.tokens, inProcess.timing.tokens);
  assert.deepEqual(fromWorker.importance, inProcess.importance);
  assert.deepEqual(fromWorker.norms, inProcess.norms);
  // The fixture's layer scales (3, 0.3, 1.5, 0.1) make layer 0 the most important and T = 0.9 keep layers 0 and 2.
  assert.match(result.summary[0]!, /^Layers 0, 2 and 1 matter most: together \d+% of the LoRA output/);
  assert.match(result.summary[1]!, /^T = 0\.9 keeps 2 of 4 layers \(0, 2\); the other 2 would share one LoRA, \d+% fewer LoRA parameters\.$/);
  assert.ok(updates.length > 0 && updates[updates.length - 1]!.step === updates[updates.length - 1]!.total, "the last progress update reports completion");
});

test("cancel: the worker stops the engine and nothing is written", async () => {
  const outFile = path.join(tmpDir(), "cancelled.profile.json");
  const controller = new AbortController();
  const run = runJob({ kind: "profile", modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 24, maxTokens: 24, device: "cpu", outFile, threshold: 0.9 }, { signal: controller.signal });
  setImmediate(() => controller.abort());
  await assert.rejects(run, (e) => isLoraDropError(e) && e.code === "CANCELLED");
  assert.equal(fs.existsSync(outFile), false);
});

test("a worker that ignores cancel is killed after the grace period", async () => {
  const dir = tmpDir();
  const stubborn = path.join(dir, "stubborn.js");
  fs.writeFileSync(stubborn, "process.on('message', () => {}); setInterval(() => {}, 1000);\n");
  const controller = new AbortController();
  const started = Date.now();
  const run = runJob({ kind: "profile", modelDir: "", adapterDir: "", dataPath: "", maxExamples: 1, maxTokens: 1, device: "cpu", outFile: "", threshold: 0.9 }, { signal: controller.signal, workerPath: stubborn, killAfterMs: 300 });
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(run, (e) => isLoraDropError(e) && e.code === "CANCELLED");
  assert.ok(Date.now() - started < 5000);
});

test("engine errors keep their code and file; a crashed worker is reported", async () => {
  const missing = path.join(tmpDir(), "no-model");
  await assert.rejects(
    runJob({ kind: "profile", modelDir: missing, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 1, maxTokens: 8, device: "cpu", outFile: path.join(tmpDir(), "x.json"), threshold: 0.9 }),
    (e) => isLoraDropError(e) && e.code === "FILE_NOT_FOUND" && (e.file ?? "").startsWith(missing),
  );
  const crash = path.join(tmpDir(), "crash.js");
  fs.writeFileSync(crash, "process.stderr.write('native failure\\n'); process.exit(3);\n");
  await assert.rejects(
    runJob({ kind: "profile", modelDir: "", adapterDir: "", dataPath: "", maxExamples: 1, maxTokens: 1, device: "cpu", outFile: "", threshold: 0.9 }, { workerPath: crash }),
    /worker process ended unexpectedly \(exit code 3\).*native failure/,
  );
});
