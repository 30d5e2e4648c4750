/**
 * Cancel from the extension during a torch-engine training: a real train job through jobRunner (a worker process
 * per job, which starts the Python engine), cancelled after its first step. The engine gets SIGINT (then SIGTERM,
 * then SIGKILL), the job rejects with CancelledError, nothing is written and no engine process is left. And when
 * the worker is killed outright (out of memory, or the host giving up on it), the engine — in a process group of
 * its own, out of the dead worker's reach — notices its Node process is gone and stops by itself.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runJob } from "../../../extension/host/jobRunner";
import type { TrainJob } from "../../../extension/worker/jobProtocol";
import { isLoraDropError } from "../../../extension/core/util/errors";
import { PARENT_PID_VAR, torchPackageRoot } from "../../../extension/core/torch/python";
import { makeTorchFixtures, tagGone, taggedProcesses, TAG_VAR, torchEnvOrSkip } from "../../torchEnv";
import { tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const fx = env ? makeTorchFixtures(env, ["llama"]).llama : undefined;

/** A torch training job of many steps (300 epochs of 10 examples, 2 per step). */
function longJob(out: string): TrainJob {
  return {
    kind: "train", modelDir: fx!.modelDir, dataPath: fx!.dataFile, outDir: out, r: 4, loraAlpha: 8, targets: ["q_proj", "v_proj"], epochs: 300,
    lr: 1e-3, batchSize: 2, device: "cpu", maxTokens: 32, force: false, engine: "torch", python: env!.python,
  };
}

test("a torch training cancelled from the extension stops the engine (SIGINT) and writes nothing", { skip }, async () => {
  const tag = `wc-cancel-${process.pid}`;
  const out = path.join(tmpDir(), "adapter");
  const controller = new AbortController();
  let steps = 0;
  const job = runJob(longJob(out), {
    signal: controller.signal, env: { ...env!.env, ORT_DISABLE_TELEMETRY: "1", [TAG_VAR]: tag } as Record<string, string>,
    trainStep: () => { if (++steps === 1) controller.abort(); },
  });
  await assert.rejects(job, (e: unknown) => isLoraDropError(e) && e.code === "CANCELLED");
  assert.ok(steps >= 1, "the job was cancelled during training");
  assert.ok(await tagGone(tag, 15_000), `engine processes left: ${taggedProcesses(tag).join(", ")}`);
  assert.equal(fs.existsSync(out), false, "nothing written");
  assert.deepEqual(fs.readdirSync(path.dirname(out)), [], "no temporary folder left");
});

test("a worker killed outright (SIGKILL) during a torch training: the engine stops by itself, nothing written", { skip }, async () => {
  const tag = `wc-kill-${process.pid}`;
  const out = path.join(tmpDir(), "adapter");
  let killed: number[] = [];
  const job = runJob(longJob(out), {
    env: { ...env!.env, ORT_DISABLE_TELEMETRY: "1", [TAG_VAR]: tag } as Record<string, string>,
    trainStep: () => {
      if (killed.length) return;
      // The worker is the tagged Node process running worker.js; the engine, its child, is left to notice.
      killed = taggedProcesses(tag).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("worker.js"));
      for (const pid of killed) process.kill(pid, "SIGKILL");
    },
  });
  await assert.rejects(job, (e: unknown) => /worker process ended unexpectedly \(SIGKILL\)/.test((e as Error).message));
  assert.equal(killed.length, 1, "the worker was found and killed");
  assert.ok(taggedProcesses(tag).length >= 1, "the engine outlives the worker for a moment");
  assert.ok(await tagGone(tag, 15_000), `engine processes left: ${taggedProcesses(tag).join(", ")}`);
  assert.equal(fs.existsSync(out), false, "nothing written");
});

test("the engine's watch on its Node process: gone, the engine stops itself within seconds, even in a long step", { skip: spawnSync("python3", ["--version"]).status === 0 ? false : "no python3" }, async () => {
  // A stand-in for the Node process that dies after a second, and an engine process blocked in a 60 s "step".
  const parent = spawn("sleep", ["1"]);
  const code = "from lora_drop_torch import signals\nsignals.install()\nimport time\ntry:\n    time.sleep(60)\nexcept BaseException as e:\n    print(type(e).__name__)";
  const started = Date.now();
  const r = await new Promise<{ out: string; code: number | null }>((resolve) => {
    const child = spawn(env?.python ?? "python3", ["-c", code], { env: { ...process.env, PYTHONPATH: torchPackageRoot(), [PARENT_PID_VAR]: String(parent.pid) } });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.on("close", (c) => resolve({ out, code: c }));
  });
  assert.equal(r.out.trim(), "Cancelled", "stopped as by SIGTERM");
  assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`);
});
