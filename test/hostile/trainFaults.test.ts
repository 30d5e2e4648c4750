/**
 * Faults while training: `lora-drop train` killed with SIGKILL at several moments (after the Nth step's log line,
 * the instant a checkpoint's temporary folder appears, and at timed offsets) leaves at --out either the complete
 * adapter or nothing, a checkpoint folder that `--resume` accepts, and no visible temporaries; the resumed run's
 * adapter is byte-identical to an uninterrupted one. A non-finite loss stops training with NUMERICAL naming the
 * step, writes no output and keeps the last good checkpoint. The model, dataset and initial adapter are never touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { makeFixture, Fixture, treeHashes, BIN } from "../helpers";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { readCheckpoint } from "../../extension/core/train/checkpoint";

const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: "1" };
const STEPS = 24;


/** Hashes and mtimes of the files under a folder or of one file. */
const snapshot = (p: string) => treeHashes(p, (st) => String(st.mtimeMs));

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: ENV });
}

/** A tiny Llama, an initial adapter and a pre-tokenised dataset: each step takes milliseconds. */
function fixture(): { fx: Fixture; data: string; inputs: string[] } {
  const fx = makeFixture({ numLayers: 2, tokenizer: false, hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 64, vocabSize: 64 },
    { targets: ["q_proj", "v_proj"], r: 4 }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  const rows = [[1, 7, 30, 4, 9, 12], [1, 2, 3, 5], [1, 40, 41, 42, 43, 44, 45], [1, 11, 13, 17, 19]];
  fs.writeFileSync(data, rows.map((ids) => JSON.stringify({ input_ids: ids })).join("\n") + "\n");
  return { fx, data, inputs: [fx.modelDir, fx.adapterDir, data] };
}

/** The train command line for an output in `dir`. */
function trainArgs(fx: Fixture, data: string, dir: string, extra: string[] = []): string[] {
  return ["train", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--out", path.join(dir, "out"),
    "--steps", String(STEPS), "--checkpoint-every", "1", "--batch-size", "2", "--lr", "1e-2", "--seed", "7",
    "--device", "cpu", "--threads", "1", "--log", path.join(dir, "log.jsonl"), "--quiet", ...extra];
}

const pause = new Int32Array(new SharedArrayBuffer(4));
/** Polls (blocking this process for 1 ms between tries; the child runs meanwhile) until `cond` holds or `ms` pass. */
function spinUntil(cond: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    Atomics.wait(pause, 0, 0, 1);
  }
  return false;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));
}

function logLines(dir: string): number {
  try {
    return fs.readFileSync(path.join(dir, "log.jsonl"), "utf8").split("\n").filter((l) => l.startsWith("{\"event\":\"step\"")).length;
  } catch {
    return 0;
  }
}

test("SIGKILL during train leaves the complete adapter or nothing, a checkpoint --resume accepts, and a bit-identical resumed result", async (t) => {
  const { fx, data, inputs } = fixture();
  const before = inputs.map((p) => snapshot(p));
  const config = loadHfModel(fx.modelDir).config;
  const refDir = path.join(fx.root, "ref");
  fs.mkdirSync(refDir);
  const t0 = Date.now();
  const ref = cli(trainArgs(fx, data, refDir));
  const refMs = Date.now() - t0;
  assert.equal(ref.status, 0, ref.stderr);
  const refBytes = fs.readFileSync(path.join(refDir, "out", "adapter_model.safetensors"));
  const refConfig = fs.readFileSync(path.join(refDir, "out", "adapter_config.json"), "utf8");
  assert.equal(logLines(refDir), STEPS);

  const parent = path.join(fx.root, "kills");
  const hidden = () => fs.readdirSync(parent).filter((e) => e.startsWith("."));
  const triggers: [string, () => boolean][] = [
    ...[1, 3, 6, STEPS - 1, STEPS].map((k) => [`after step ${k} logged`, () => logLines(parent) >= k] as [string, () => boolean]),
    ["a checkpoint's temporary folder exists", () => hidden().some((e) => e.startsWith(".out.checkpoint.tmp-"))],
    ["the output's temporary folder exists", () => hidden().some((e) => e.startsWith(".out.tmp-"))],
    ["the output is in place", () => fs.existsSync(path.join(parent, "out"))],
    ...[0.3, 0.6, 0.9].map((f) => [`after ${Math.round(f * refMs)} ms`, () => false] as [string, () => boolean]),
  ];
  const failures: string[] = [];
  const outcomes: Record<string, number> = {};
  let resumed = 0;
  let fromCheckpoint = 0;
  const seen: string[] = [];
  for (const [name, cond] of triggers) {
    fs.rmSync(parent, { recursive: true, force: true });
    fs.mkdirSync(parent);
    const child = spawn(process.execPath, [BIN, ...trainArgs(fx, data, parent)], { stdio: "ignore", env: ENV });
    const timed = name.startsWith("after ") && name.endsWith(" ms");
    const hit = spinUntil(cond, timed ? Number(name.split(" ")[1]) : 20_000);
    child.kill("SIGKILL");
    await exited(child);
    const label = `kill ${name}${hit || timed ? "" : " (not reached)"}${child.signalCode === "SIGKILL" ? "" : " (had exited)"}`;
    seen.push(`${label}: step ${logLines(parent)}`);
    const out = path.join(parent, "out");
    // Only the output, its checkpoint and the log may be visible; temporaries are hidden (dot) names.
    const visible = fs.readdirSync(parent).filter((e) => !e.startsWith(".")).sort();
    const extra = visible.filter((e) => !["log.jsonl", "out", "out.checkpoint"].includes(e));
    if (extra.length) failures.push(`${label}: visible leftovers ${extra.join(", ")}`);
    let state = "nothing";
    if (fs.existsSync(out)) {
      state = "complete";
      try {
        loadAdapter(out, config);
        if (!fs.readFileSync(path.join(out, "adapter_model.safetensors")).equals(refBytes)) state = "different";
        if (fs.readFileSync(path.join(out, "adapter_config.json"), "utf8") !== refConfig) state = "different";
      } catch (e) {
        state = "unloadable";
        failures.push(`${label}: the output does not load (${(e as Error).message})`);
      }
      if (state === "different") failures.push(`${label}: the output differs from the uninterrupted run's`);
    }
    outcomes[state] = (outcomes[state] ?? 0) + 1;
    const cpDir = `${out}.checkpoint`;
    if (fs.existsSync(cpDir)) {
      try {
        const cp = readCheckpoint(cpDir);
        if (!cp) failures.push(`${label}: the checkpoint folder has no state.json`);
        else if (!(cp.state.step >= 1 && cp.state.step < STEPS)) failures.push(`${label}: checkpoint step ${cp.state.step}`);
        else if (state === "nothing") fromCheckpoint++;
      } catch (e) {
        failures.push(`${label}: the checkpoint does not read (${(e as Error).message})`);
      }
    }
    if (state === "nothing") {
      const r = cli(trainArgs(fx, data, parent, ["--resume"]));
      resumed++;
      if (r.status !== 0) failures.push(`${label}: --resume failed: ${r.stderr}`);
      else if (!fs.readFileSync(path.join(out, "adapter_model.safetensors")).equals(refBytes)) failures.push(`${label}: the resumed adapter differs from the uninterrupted run's`);
    }
  }
  t.diagnostic(`uninterrupted run ${refMs} ms; kills: ${Object.entries(outcomes).map(([k, v]) => `${v} ${k}`).join(", ")}; ${resumed} resumed (${fromCheckpoint} from a checkpoint)`);
  for (const s of seen) t.diagnostic(s);
  assert.deepEqual(failures, []);
  assert.ok(fromCheckpoint >= 3, `only ${fromCheckpoint} kills left a checkpoint to resume from`);
  assert.deepEqual(inputs.map((p) => snapshot(p)), before, "the model, dataset and initial adapter are unchanged");
});

/** A copy of `src` adapter with the first value of its first lora_B tensor set to NaN. */
function nanAdapter(src: string, dst: string): string {
  fs.cpSync(src, dst, { recursive: true });
  const file = path.join(dst, "adapter_model.safetensors");
  const buf = fs.readFileSync(file);
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const key = Object.keys(header).find((k) => k.includes("lora_B"))!;
  assert.equal(header[key]!.dtype, "F32");
  buf.writeFloatLE(NaN, 8 + hlen + header[key]!.data_offsets[0]);
  fs.writeFileSync(file, buf);
  return key;
}

test("a non-finite loss stops training with NUMERICAL naming the step, writes no output and keeps the last good checkpoint", () => {
  const { fx, data } = fixture();
  const bad = path.join(fx.root, "nan-adapter");
  nanAdapter(fx.adapterDir, bad);
  const inputs = [fx.modelDir, bad, data];
  const before = inputs.map((p) => snapshot(p));
  const dir = path.join(fx.root, "nan");
  fs.mkdirSync(dir);
  const out = path.join(dir, "out");
  const args = trainArgs(fx, data, dir).map((a) => (a === fx.adapterDir ? bad : a));
  const r = cli(args);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /error \[NUMERICAL\]: .*ids\.jsonl: step 1: the loss is NaN/);
  assert.equal(fs.existsSync(out), false);
  assert.equal(fs.existsSync(`${out}.checkpoint`), false, "no step completed, so no checkpoint");
  assert.deepEqual(inputs.map((p) => snapshot(p)), before);

  // A learning rate so large that step 1's update makes step 2's forward pass overflow: step 1's checkpoint stays.
  const dir2 = path.join(fx.root, "blowup");
  fs.mkdirSync(dir2);
  const out2 = path.join(dir2, "out");
  const r2 = cli(trainArgs(fx, data, dir2).map((a) => (a === "1e-2" ? "1e30" : a)));
  assert.equal(r2.status, 2, r2.stderr);
  const m = /error \[NUMERICAL\]: .*: step (\d+): the (loss|gradient norm) is (NaN|-?Infinity)/.exec(r2.stderr);
  assert.ok(m, r2.stderr);
  const failedAt = Number(m[1]);
  assert.ok(failedAt >= 2, `failed at step ${failedAt}`);
  assert.equal(fs.existsSync(out2), false);
  assert.equal(fs.readdirSync(dir2).filter((e) => !e.startsWith(".")).sort().join(), "log.jsonl,out.checkpoint");
  const cp = readCheckpoint(`${out2}.checkpoint`)!;
  assert.equal(cp.state.step, failedAt - 1, "the checkpoint is the last good step");
  assert.equal(logLines(dir2), failedAt - 1);
  for (const [k, v] of cp.tensors) assert.ok(v.every(Number.isFinite), `${k} is finite in the kept checkpoint`);
});
