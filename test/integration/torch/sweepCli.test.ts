/**
 * `lora-drop sweep --engine torch` and `lora-drop profile --criterion ablation --engine torch` as users run them:
 * the same numbers as the onnx engine, the engine and device said and recorded; the other engine's device or
 * options refused in one line with exit code 2 before anything is read; Ctrl-C during a torch sweep: exit 130,
 * no sweep file, and no engine process left behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { readSweep } from "../../../extension/core/sweep/sweepFile";
import { makeTorchFixtures, tagGone, taggedProcesses, TAG_VAR, torchEnvOrSkip } from "../../torchEnv";
import { BIN, tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const fx = env ? makeTorchFixtures(env, ["roberta"]).roberta : undefined;
const TAG = `sweep-cli-${process.pid}-${Date.now()}`;
const cliEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...env?.env, LORA_DROP_PYTHON: env?.python, ORT_DISABLE_TELEMETRY: "1", [TAG_VAR]: TAG });
const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: cliEnv() });

test("sweep and ablation on the torch engine refuse the onnx engine's device and options in one line, exit code 2", () => {
  const out = path.join(tmpDir(), "s.json");
  const files = ["--model", "m", "--adapter", "a", "--data", "d"];
  const cases: [string[], string][] = [
    [["sweep", ...files, "--profile", "p.json", "--out", out, "--engine", "torch", "--device", "webgpu"], 'the torch engine runs on auto, cuda, mps, cpu, not "webgpu"'],
    [["sweep", ...files, "--profile", "p.json", "--out", out, "--engine", "torch", "--stream", "on"], "layer streaming is the onnx engine's"],
    [["profile", ...files, "--out", out, "--criterion", "ablation", "--engine", "torch", "--memory-budget", "1G"], "the memory budget bounds the onnx engine's layer streaming"],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(r.stderr.startsWith(`error [INVALID_ARGUMENT]: ${message}`), r.stderr);
  }
});

test("sweep --engine torch equals sweep --engine onnx and says where it ran; so does profile --criterion ablation", { skip }, () => {
  const dir = tmpDir();
  const files = ["--model", fx!.modelDir, "--adapter", fx!.adapterDir, "--data", fx!.dataFile, "--device", "cpu", "--batch-size", "4"];
  const profile = path.join(dir, "profile.json");
  assert.equal(cli(["profile", ...files, "--out", profile, "--quiet"]).status, 0);
  const torch = cli(["sweep", ...files, "--profile", profile, "--engine", "torch", "--out", path.join(dir, "torch.json")]);
  assert.equal(torch.status, 0, torch.stderr);
  assert.match(torch.stdout, /configurations in [\d.]+ s on torch cpu float32/);
  const onnx = cli(["sweep", ...files, "--profile", profile, "--out", path.join(dir, "onnx.json"), "--quiet"]);
  assert.equal(onnx.status, 0, onnx.stderr);
  const [t, o] = [readSweep(path.join(dir, "torch.json")), readSweep(path.join(dir, "onnx.json"))];
  assert.deepEqual([t.engine, t.measured.device, o.engine], ["torch", "torch cpu float32", "onnx"]);
  assert.equal(t.points.length, o.points.length);
  t.points.forEach((p, i) => assert.ok(Math.abs(p.loss - o.points[i]!.loss) <= 1e-5 * o.points[i]!.loss, `point ${i}: ${p.loss} vs ${o.points[i]!.loss}`));

  const ablation = cli(["profile", ...files, "--criterion", "ablation", "--engine", "torch", "--out", path.join(dir, "ablation.json")]);
  assert.equal(ablation.status, 0, ablation.stderr);
  assert.match(ablation.stdout, /ran on: torch cpu float32; 10 sequences/);
  const a = readProfile(path.join(dir, "ablation.json"));
  assert.deepEqual([a.engine, a.criterion], ["torch", "ablation"]);
  assert.ok(Math.abs(a.ablation!.full_loss - o.full_loss) <= 1e-5 * o.full_loss, "the ablation's full loss is the sweep's");
  assert.doesNotMatch(torch.stderr + ablation.stderr, /Traceback/);
});

test("Ctrl-C during a torch sweep: exit 130, no sweep file, no engine process left", { skip }, async () => {
  const dir = tmpDir();
  const files = ["--model", fx!.modelDir, "--adapter", fx!.adapterDir, "--data", fx!.dataFile, "--device", "cpu"];
  const profile = path.join(dir, "profile.json");
  assert.equal(cli(["profile", ...files, "--out", profile, "--quiet"]).status, 0);
  const out = path.join(dir, "sweep.json");
  const child = spawn(process.execPath, [BIN, "sweep", ...files, "--profile", profile, "--engine", "torch", "--out", out], { env: cliEnv() });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  // The CLI and its engine process, then the interrupt.
  for (let i = 0; i < 300 && taggedProcesses(TAG).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(taggedProcesses(TAG).length >= 2, "the engine process started");
  child.kill("SIGINT");
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /error \[CANCELLED\]/);
  assert.doesNotMatch(stderr, /Traceback/);
  assert.deepEqual(fs.readdirSync(dir), ["profile.json"], "no sweep file");
  assert.ok(await tagGone(TAG, 2000), `engine processes left: ${taggedProcesses(TAG).join(", ")}`);
});
