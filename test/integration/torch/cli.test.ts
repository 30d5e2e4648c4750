/**
 * The torch engine through the CLI, as users run it: `profile --engine torch` and `train --engine torch` against
 * the same commands on the onnx engine (the same numbers, and "ran on: torch cpu float32" said); a device of the
 * other engine refused in one line; a run over two nodes (two CLIs, one process each, env:// rendezvous) where
 * node 1 ends cleanly saying node 0 writes and node 0 writes the adapter one process would have; and Ctrl-C
 * during training: exit 130, nothing written, and no engine process left behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { freePort } from "../../../extension/core/torch/launcher";
import { makeTorchFixtures, tagGone, taggedProcesses, TAG_VAR, torchEnvOrSkip } from "../../torchEnv";
import { BIN, tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const fx = env ? makeTorchFixtures(env, ["llama"]).llama : undefined;
const TAG = `cli-${process.pid}-${Date.now()}`;
const cliEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...env?.env, LORA_DROP_PYTHON: env?.python, ORT_DISABLE_TELEMETRY: "1", [TAG_VAR]: TAG });

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: cliEnv() });
}

/** Largest |a-b| / max|b| over the LoRA tensors of two adapters of the fixture's model. */
function adapterDistance(a: string, b: string): number {
  const cfg = loadHfModel(fx!.modelDir).config;
  const [x, y] = [loadAdapter(a, cfg), loadAdapter(b, cfg)];
  let worst = 0;
  y.loras.forEach((l, i) => {
    for (const w of ["A", "B"] as const) {
      const scale = Math.max(...Array.from(l[w], Math.abs), 1e-12);
      l[w].forEach((v, k) => { worst = Math.max(worst, Math.abs(x.loras[i]![w][k]! - v) / scale); });
    }
  });
  return worst;
}

test("a device of the other engine is one INVALID_ARGUMENT line, exit code 2", () => {
  const r = spawnSync(process.execPath, [BIN, "profile", "--engine", "torch", "--device", "webgpu", "--model", "m", "--adapter", "a", "--data", "d", "--out", path.join(tmpDir(), "p.json")], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), 'error [INVALID_ARGUMENT]: the torch engine runs on auto, cuda, mps, cpu, not "webgpu"; webgpu is the onnx engine\'s (choose engine onnx)');
});

test("profile --engine torch equals profile --engine onnx, and says it ran on torch", { skip }, () => {
  const dir = tmpDir();
  const common = ["profile", "--model", fx!.modelDir, "--adapter", fx!.adapterDir, "--data", fx!.dataFile, "--device", "cpu", "--batch-size", "4"];
  const t = cli([...common, "--engine", "torch", "--out", path.join(dir, "torch.json")]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /ran on: torch cpu float32; 10 sequences/);
  const o = cli([...common, "--out", path.join(dir, "onnx.json")]);
  assert.equal(o.status, 0, o.stderr);
  const [tp, op] = [readProfile(path.join(dir, "torch.json")), readProfile(path.join(dir, "onnx.json"))];
  assert.deepEqual([tp.engine, tp.device, op.engine, op.device], ["torch", "torch cpu float32", "onnx", "cpu"]);
  tp.importance.per_layer.forEach((x, i) => assert.ok(Math.abs(x - op.importance.per_layer[i]!) <= 1e-5, `layer ${i}: ${x} vs ${op.importance.per_layer[i]}`));
});

test("train --engine torch equals train --engine onnx; over two nodes, node 1 ends cleanly and node 0 writes the same adapter", { skip }, async () => {
  const dir = tmpDir();
  // Continuing the fixture's adapter: a fresh LoRA's B starts at zero, where AdamW's first steps turn rounding-level
  // differences of near-zero gradient components into whole steps, and no tolerance tells engines apart there.
  const common = ["train", "--model", fx!.modelDir, "--data", fx!.dataFile, "--adapter", fx!.adapterDir, "--steps", "3", "--batch-size", "4", "--lr", "5e-3", "--device", "cpu", "--quiet"];
  const onnx = cli([...common, "--out", path.join(dir, "onnx")]);
  assert.equal(onnx.status, 0, onnx.stderr);
  const torch = cli([...common, "--engine", "torch", "--out", path.join(dir, "torch")]);
  assert.equal(torch.status, 0, torch.stderr);
  const d = adapterDistance(path.join(dir, "torch"), path.join(dir, "onnx"));
  assert.ok(d > 0 && d <= 1e-4, `the adapters trained by the two engines differ by ${d} of their scale`);

  const port = String(await freePort());
  const node = (rank: number) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...common.filter((a) => a !== "--quiet"), "--engine", "torch", "--out", path.join(dir, `node${rank}`),
      "--nnodes", "2", "--node-rank", String(rank), "--master-addr", "127.0.0.1", "--master-port", port, "--nproc-per-node", "1"], { env: cliEnv() });
    let stdout = "", stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  const [zero, one] = await Promise.all([node(0), node(1)]);
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^node 1: done; node 0 writes the adapter \(nothing was written to .*node1 here\)$/m);
  assert.doesNotMatch(one.stderr, /exited before answering|error/);
  assert.match(zero.stdout, /ran on: torch cpu float32, 2 processes/);
  assert.equal(fs.existsSync(path.join(dir, "node1")), false, "node 1 writes nothing");
  // Two processes of one example-share each compute the global batch of one process.
  const dd = adapterDistance(path.join(dir, "node0"), path.join(dir, "torch"));
  assert.ok(dd <= 1e-5, `two nodes and one process differ by ${dd} of the adapter's scale`);
});

test("nodes given different LoRA structures both stop with one INVALID_ARGUMENT line instead of hanging", { skip }, async () => {
  const dir = tmpDir();
  const port = String(await freePort());
  const node = (rank: number, targets: string) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, "train", "--engine", "torch", "--device", "cpu", "--model", fx!.modelDir, "--data", fx!.dataFile, "--steps", "2",
      "--targets", targets, "--out", path.join(dir, `node${rank}`), "--nnodes", "2", "--node-rank", String(rank), "--master-addr", "127.0.0.1", "--master-port", port, "--quiet"],
    { env: cliEnv() });
    let stderr = "";
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stderr }));
  });
  const runs = await Promise.all([node(0, "q_proj,v_proj"), node(1, "q_proj")]);
  for (const r of runs) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error \[INVALID_ARGUMENT\]: .*given different LoRA structures or step plans; run the same command on the same files on every node/);
  }
  assert.deepEqual(fs.readdirSync(dir), [], "nothing written");
});

test("Ctrl-C during torch training: exit 130, nothing written, no engine process left", { skip }, async () => {
  const out = path.join(tmpDir(), "cancelled");
  const child = spawn(process.execPath, [BIN, "train", "--engine", "torch", "--model", fx!.modelDir, "--data", fx!.dataFile, "--steps", "3000", "--batch-size", "2",
    "--device", "cpu", "--out", out], { env: cliEnv() });
  let stderr = "";
  const stepped = new Promise<void>((resolve) => child.stderr.on("data", (c) => { stderr += c; if (/train: \d+%|loss/.test(stderr)) resolve(); }));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await Promise.race([stepped, exited]);
  assert.ok(taggedProcesses(TAG).length >= 2, "the CLI and its engine process are running");
  child.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /cancelling…/);
  assert.match(stderr, /error \[CANCELLED\]/);
  assert.doesNotMatch(stderr, /Traceback/);
  assert.equal(fs.existsSync(out), false, "nothing written");
  assert.deepEqual(fs.readdirSync(path.dirname(out)), [], "no temporary folder left");
  assert.ok(await tagGone(TAG, 2000), `engine processes left: ${taggedProcesses(TAG).join(", ")}`);
});
