/**
 * Jobs as the worker receives them: the field checks (a crafted message fails with INVALID_ARGUMENT naming the
 * field, in-process and through the real worker, which keeps answering), and the memory budget and streaming
 * choice reaching the engine's profile, training and pipeline (seen in the plan the engine logs, in its
 * MEMORY_BUDGET error, and in streamed results equal to whole-model ones); the sweep job end to end.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { jobProblem } from "../../../extension/worker/jobValidation";
import { runJobInProcess, type JobContext } from "../../../extension/worker/jobHandlers";
import { runJob } from "../../../extension/host/jobRunner";
import type { PipelineJob, ProfileJob, SweepJob, TrainJob } from "../../../extension/worker/jobProtocol";
import { readSweep, sweepPathFor } from "../../../extension/core/sweep/sweepFile";
import { isLoraDropError } from "../../../extension/core/util/errors";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture, maxRelErr, tmpDir } from "../../helpers";

const fx = makeFixture({}, {}, { count: 16 });
const MiB = 1024 ** 2;

const profileJob = (extra: Partial<ProfileJob> = {}): ProfileJob => ({
  kind: "profile", modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 6, maxTokens: 16, device: "cpu",
  outFile: path.join(tmpDir(), "p.profile.json"), threshold: 0.9, ...extra,
});
const trainJob = (extra: Partial<TrainJob> = {}): TrainJob => ({
  kind: "train", modelDir: fx.modelDir, dataPath: fx.dataFile, outDir: path.join(tmpDir(), "adapter"), r: 4, loraAlpha: 8, targets: ["q_proj", "v_proj"],
  epochs: 1, lr: 1e-3, batchSize: 4, device: "cpu", maxTokens: 16, force: false, ...extra,
});
const pipelineJob = (extra: Partial<PipelineJob> = {}): PipelineJob => ({
  kind: "pipeline", modelDir: fx.modelDir, dataPath: fx.dataFile, outDir: path.join(tmpDir(), "pipeline"), threshold: 0.9, sampleFraction: 0.5,
  r: 4, loraAlpha: 8, targets: ["q_proj", "v_proj"], lr: 1e-3, batchSize: 4, device: "cpu", maxTokens: 16, force: false, ...extra,
});

/** A job context that keeps the engine's log lines. */
function logged(): { ctx: JobContext; lines: string[] } {
  const lines: string[] = [];
  return { ctx: { log: { info: (m) => lines.push(m), warn: (m) => lines.push(`warn: ${m}`) } }, lines };
}

const isInvalid = (field: string) => (e: unknown) => isLoraDropError(e) && e.code === "INVALID_ARGUMENT" && e.field === field;

test("job checks: well-formed jobs pass; each bad field is named", () => {
  assert.equal(jobProblem(profileJob()), undefined);
  assert.equal(jobProblem(profileJob({ memoryBudget: 6 * 1024 ** 3, stream: "on" })), undefined);
  assert.equal(jobProblem(trainJob({ memoryBudget: 1, stream: "off", initAdapterDir: fx.adapterDir })), undefined);
  assert.equal(jobProblem(pipelineJob({ stream: "auto" })), undefined);
  assert.equal(jobProblem(profileJob({ engine: "torch", python: "/venv/bin/python", dtype: "bfloat16", device: "mps" })), undefined);
  assert.equal(jobProblem(trainJob({ engine: "onnx", device: "webgpu" })), undefined, "which device goes with which engine is the engine's check");
  assert.equal(jobProblem({ kind: "prune", adapterDir: "a", profilePath: "p", threshold: 0.9, mode: "share", format: "peft", outDir: "o", force: true }), undefined);
  const cases: [unknown, string][] = [
    [profileJob({ memoryBudget: "6G" as unknown as number }), "memoryBudget"],
    [profileJob({ memoryBudget: 0 }), "memoryBudget"],
    [trainJob({ memoryBudget: -1024 }), "memoryBudget"],
    [trainJob({ memoryBudget: 1.5 }), "memoryBudget"],
    [pipelineJob({ memoryBudget: Number.POSITIVE_INFINITY }), "memoryBudget"],
    [pipelineJob({ memoryBudget: 2 ** 60 }), "memoryBudget"],
    [profileJob({ stream: "yes" as "on" }), "stream"],
    [trainJob({ stream: null as unknown as "on" }), "stream"],
    [pipelineJob({ device: "tpu" as "cpu" }), "device"],
    [profileJob({ engine: "jax" as "torch" }), "engine"],
    [trainJob({ engine: "torch", dtype: "int8" as "float16" }), "dtype"],
    [pipelineJob({ engine: "torch", python: 3 as unknown as string }), "python"],
    [{ ...profileJob(), maxTokens: "16" }, "maxTokens"],
    [{ ...trainJob(), targets: "q_proj" }, "targets"],
    [{ ...trainJob(), force: "no" }, "force"],
    [(({ outDir: _o, ...rest }) => rest)(pipelineJob()), "outDir"],
    [{ kind: "format-disk" }, "kind"],
    [{ kind: "toString" }, "kind"],
    [null, "job"],
    [[profileJob()], "job"],
  ];
  for (const [job, field] of cases) assert.equal(jobProblem(job)?.field, field, JSON.stringify(job));
  assert.equal(jobProblem(profileJob({ memoryBudget: "6G" as unknown as number }))?.message, 'memoryBudget must be a positive integer, got "6G"');
  assert.equal(jobProblem(profileJob({ stream: "yes" as "on" }))?.message, 'stream must be one of auto, on, off, got "yes"');
});

test("job checks: the precision fields of profile and sweep jobs", () => {
  assert.equal(jobProblem(profileJob({ precision: "int8", quantCacheDir: "/tmp/q" })), undefined);
  assert.equal(jobProblem(profileJob({ precision: "int2" as "int8" }))?.message, 'precision must be one of fp32, int8, int4, got "int2"');
  assert.equal(jobProblem(profileJob({ quantCacheDir: 7 as unknown as string }))?.field, "quantCacheDir");
  const sweep = { kind: "sweep", modelDir: "m", adapterDir: "a", profilePath: "p", dataPath: "d", mode: "share", maxExamples: 4, maxTokens: 8, device: "cpu", outFile: "o", force: false };
  assert.equal(jobProblem({ ...sweep, precision: "int4" }), undefined);
  assert.equal(jobProblem({ ...sweep, precision: 4 })?.field, "precision");
});

test("a profile job with a quantized precision records it in the profile", async () => {
  const out = path.join(tmpDir(), "p.json");
  const r = await runJobInProcess(profileJob({ outFile: out, precision: "int8", quantCacheDir: path.join(tmpDir(), "q") }), {});
  assert.equal((r as { profilePath: string }).profilePath, out);
  assert.equal(JSON.parse(fs.readFileSync(out, "utf8")).precision, "int8");
});

test("a job's device and options must be its engine's: the engine's own check, named by field", async () => {
  await assert.rejects(runJobInProcess(profileJob({ engine: "torch", device: "webgpu" }), {}), (e) => isInvalid("device")(e) && /webgpu is the onnx engine's/.test((e as Error).message));
  await assert.rejects(runJobInProcess(trainJob({ device: "mps" }), {}), (e) => isInvalid("device")(e) && /mps is the torch engine's/.test((e as Error).message));
  await assert.rejects(runJobInProcess(pipelineJob({ dtype: "bfloat16" }), {}), isInvalid("dtype"));
  await assert.rejects(runJobInProcess(trainJob({ engine: "torch", stream: "on" }), {}), isInvalid("stream"));
});

test("a crafted job fails with INVALID_ARGUMENT naming the field, in this process and in the worker, which keeps serving", async () => {
  await assert.rejects(runJobInProcess(profileJob({ stream: "always" as "on" }), {}), isInvalid("stream"));
  await assert.rejects(runJobInProcess(trainJob({ memoryBudget: "lots" as unknown as number }), {}), isInvalid("memoryBudget"));
  await assert.rejects(runJob(pipelineJob({ memoryBudget: -5 }), { env: { ORT_DISABLE_TELEMETRY: "1" } }), (e) => isInvalid("memoryBudget")(e) && /got -5/.test((e as Error).message));
  // The next job in a fresh worker runs normally.
  const ok = await runJob(profileJob({ maxExamples: 2 }), { env: { ORT_DISABLE_TELEMETRY: "1" } });
  assert.equal(ok.sequences, 2);
});

test("profile job: the budget and the streaming choice reach the engine; streamed norms equal whole-model norms", async () => {
  const streamed = logged();
  const on = await runJobInProcess(profileJob({ memoryBudget: 64 * MiB, stream: "on" }), streamed.ctx);
  assert.ok(streamed.lines.some((l) => /^streaming: [12] layer\(s\) per block(, prefetching the next)?, ~.* of a 64\.0 MiB budget$/.test(l)), streamed.lines.join("\n"));
  const whole = logged();
  const off = await runJobInProcess(profileJob({ memoryBudget: 64 * MiB, stream: "off" }), whole.ctx);
  assert.ok(whole.lines.some((l) => /^not streaming: .* of a 64\.0 MiB budget$/.test(l)), whole.lines.join("\n"));
  assert.ok(!whole.lines.some((l) => l.startsWith("streaming")));
  const a = readProfile(on.profilePath), b = readProfile(off.profilePath);
  const [ia, ib] = [a.importance.per_layer_raw, b.importance.per_layer_raw];
  assert.equal(ia.length, ib.length);
  assert.ok(ib.some((v) => v > 0), "the LoRA outputs are not all zero");
  assert.ok(maxRelErr(ia, ib).err < 1e-4, `importance ${ia} vs ${ib}`);
  // A budget too small for one layer is the engine's MEMORY_BUDGET error, quoting the budget it was given.
  await assert.rejects(runJobInProcess(profileJob({ memoryBudget: 2048, stream: "on" }), {}), (e) => isLoraDropError(e) && e.code === "MEMORY_BUDGET" && /memory budget 2\.0 KiB/.test(e.message));
});

test("train job: the budget and the streaming choice reach the trainer", async () => {
  const streamed = logged();
  const on = await runJobInProcess(trainJob({ memoryBudget: 48 * MiB, stream: "on" }), streamed.ctx);
  assert.ok(streamed.lines.some((l) => /^streaming: [12] layer\(s\) per block(, prefetching the next)?, ~.* of a 48\.0 MiB budget$/.test(l)), streamed.lines.join("\n"));
  assert.match(on.device, /streamed/);
  const whole = logged();
  const off = await runJobInProcess(trainJob({ memoryBudget: 48 * MiB, stream: "off" }), whole.ctx);
  assert.ok(!whole.lines.some((l) => /streaming/.test(l)), whole.lines.join("\n"));
  assert.doesNotMatch(off.device, /streamed/);
  assert.equal(on.steps, off.steps);
  assert.ok(Math.abs(on.finalLoss - off.finalLoss) < 1e-3 * Math.abs(off.finalLoss), `streamed loss ${on.finalLoss} vs whole ${off.finalLoss}`);
  await assert.rejects(runJobInProcess(trainJob({ memoryBudget: 2048, stream: "on" }), {}), (e) => isLoraDropError(e) && e.code === "MEMORY_BUDGET" && /memory budget 2\.0 KiB/.test(e.message));
});

test("pipeline job: every training and the profile get the budget and the streaming choice", async () => {
  const streamed = logged();
  await runJobInProcess(pipelineJob({ memoryBudget: 40 * MiB, stream: "on" }), streamed.ctx);
  const plans = streamed.lines.filter((l) => /^streaming: [12] layer\(s\) per block(, prefetching the next)?, ~.* of a 40\.0 MiB budget$/.test(l));
  assert.equal(plans.length, 4, `the sample, LoRA-drop and LoRA trainings and the profile stream:\n${streamed.lines.join("\n")}`);
  await assert.rejects(runJobInProcess(pipelineJob({ memoryBudget: 2048, stream: "on" }), {}), (e) => isLoraDropError(e) && e.code === "MEMORY_BUDGET" && /2\.0 KiB/.test(e.message));
});

test("worker jobs refuse an output that is one of their inputs (OUTPUT_IS_INPUT), force or not, leaving it intact", async () => {
  const { readFileSync } = await import("node:fs");
  const dataBefore = readFileSync(fx.dataFile);
  const isInput = (e: unknown) => isLoraDropError(e) && e.code === "OUTPUT_IS_INPUT";
  await assert.rejects(runJobInProcess(profileJob({ outFile: fx.dataFile }), {}), isInput);
  await assert.rejects(runJobInProcess(profileJob({ outFile: path.join(fx.adapterDir, "p.profile.json") }), {}), isInput);
  await assert.rejects(runJobInProcess(trainJob({ outDir: fx.modelDir, force: true }), {}), isInput);
  await assert.rejects(runJobInProcess(trainJob({ logFile: fx.dataFile }), {}), isInput);
  await assert.rejects(runJobInProcess(pipelineJob({ outDir: path.dirname(fx.dataFile), force: true }), {}), isInput);
  await assert.rejects(runJobInProcess({ kind: "prune", adapterDir: fx.adapterDir, profilePath: fx.dataFile, threshold: 0.9, mode: "share", format: "peft", outDir: fx.adapterDir, force: true }, {}), isInput);
  assert.deepEqual(readFileSync(fx.dataFile), dataBefore);
});

test("sweep job: runs in the worker, writes the sweep beside the profile, refuses its inputs as output; the streaming choice reaches it", async () => {
  const profile = await runJob(profileJob({ maxExamples: 4 }), { env: { ORT_DISABLE_TELEMETRY: "1" } });
  const sweepJob = (extra: Partial<SweepJob> = {}): SweepJob => ({
    kind: "sweep", modelDir: fx.modelDir, adapterDir: fx.adapterDir, profilePath: profile.profilePath, dataPath: fx.dataFile, mode: "share", maxExamples: 4, maxTokens: 16,
    device: "cpu", outFile: sweepPathFor(profile.profilePath, "share"), force: false, ...extra,
  });
  assert.equal(jobProblem(sweepJob({ memoryBudget: 64 * MiB, stream: "on" })), undefined);
  assert.equal(jobProblem({ ...sweepJob(), mode: "keep" })?.field, "mode");
  assert.equal(jobProblem({ ...sweepJob(), profilePath: 3 })?.field, "profilePath");
  assert.equal(jobProblem(sweepJob({ engine: "torch", python: "/venv/bin/python", dtype: "bfloat16", device: "mps" })), undefined);
  assert.equal(jobProblem(sweepJob({ engine: "jax" as "torch" }))?.field, "engine");
  await assert.rejects(runJobInProcess(sweepJob({ engine: "torch", device: "webgpu" }), {}), (e) => isLoraDropError(e) && e.code === "INVALID_ARGUMENT" && /webgpu is the onnx engine's/.test((e as Error).message));
  const progress: number[] = [];
  const r = await runJob(sweepJob(), { env: { ORT_DISABLE_TELEMETRY: "1" }, progress: (u) => progress.push(u.step / u.total) });
  assert.equal(r.sweepPath, profile.profilePath.replace(/\.json$/, ".sweep.json"));
  const sweep = readSweep(r.sweepPath);
  assert.equal(sweep.points.length, r.points);
  assert.equal(sweep.profile.created, readProfile(profile.profilePath).created);
  assert.ok(progress.length > 0 && progress.every((p) => p <= 1));
  await assert.rejects(runJobInProcess(sweepJob(), {}), (e) => isLoraDropError(e) && e.code === "OUTPUT_EXISTS");
  await assert.rejects(runJobInProcess(sweepJob({ outFile: profile.profilePath, force: true }), {}), (e) => isLoraDropError(e) && e.code === "OUTPUT_IS_INPUT");
  const streamed = logged();
  await runJobInProcess(sweepJob({ memoryBudget: 64 * MiB, stream: "on", force: true }), streamed.ctx);
  assert.ok(streamed.lines.some((l) => /^streaming: .* of a 64\.0 MiB budget$/.test(l)), streamed.lines.join("\n"));
});
