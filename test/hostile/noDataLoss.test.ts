/**
 * Never lose the user's data: `lora-drop profile` and `lora-drop prune` leave the model, adapter, dataset and
 * profile byte-identical; prune refuses an existing output without --force; and a prune killed with SIGKILL at any
 * moment (timed kills, and kills triggered the instant the temporary folder, its files or the output appear)
 * leaves at the output path either the complete new adapter or nothing (or, with --force, the complete old one).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { makeFixture, Fixture, treeHashes, BIN } from "../helpers";

const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: "1" };


/** Hashes (and, for inputs, mtimes) of the files under a folder or of one file. */
function snapshot(p: string, withTimes = true): Record<string, string> {
  return treeHashes(p, withTimes ? (st) => String(st.mtimeMs) : undefined);
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: ENV });
}

/** A fixture big enough that writing its pruned adapter takes a moment, with a profile written by the CLI. */
function profiled(): { fx: Fixture; data: string; profile: string; inputs: string[] } {
  const fx = makeFixture({ numLayers: 8, tokenizer: false, hiddenSize: 64, numHeads: 4, numKvHeads: 2, intermediateSize: 128, vocabSize: 128 },
    { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], r: 8 }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, `${JSON.stringify({ input_ids: [1, 7, 30, 4, 99, 12] })}\n${JSON.stringify({ input_ids: [1, 2, 3] })}\n`);
  const profile = path.join(fx.root, "profile.json");
  const r = cli(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--out", profile, "--device", "cpu", "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  return { fx, data, profile, inputs: [fx.modelDir, fx.adapterDir, data] };
}

test("profile and prune leave the model, the adapter, the dataset and the profile byte-identical", () => {
  const { fx, data, profile, inputs } = profiled();
  const before = inputs.map((p) => snapshot(p));
  const profileBefore = snapshot(profile);
  const again = cli(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--out", path.join(fx.root, "p2.json"), "--device", "cpu", "--quiet"]);
  assert.equal(again.status, 0, again.stderr);
  const out = path.join(fx.root, "pruned");
  for (const args of [["--format", "compact"], ["--mode", "drop", "--force"], ["--per-module", "--threshold", "0.5", "--force"]]) {
    const r = cli(["prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", out, "--quiet", ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
  assert.deepEqual(inputs.map((p) => snapshot(p)), before);
  assert.deepEqual(snapshot(profile), profileBefore);
});

test("prune refuses an existing output without --force and leaves it untouched", () => {
  const { fx, profile } = profiled();
  const out = path.join(fx.root, "taken");
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, "notes.txt"), "the user's file");
  const before = snapshot(out);
  const r = cli(["prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", out, "--quiet"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /error \[OUTPUT_EXISTS\]/);
  assert.deepEqual(snapshot(out), before);
  const self = cli(["prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", fx.adapterDir, "--quiet", "--force"]);
  assert.notEqual(self.status, 0, "the source adapter can never be the output");
  assert.equal(fs.readdirSync(fx.adapterDir).sort().join(), "adapter_config.json,adapter_model.safetensors");
});

/** Busy-waits (the child runs in its own process meanwhile) until `cond` holds or `ms` pass; true if it held. */
function spinUntil(cond: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) if (cond()) return true;
  return false;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));
}

test("SIGKILL at any moment of prune leaves the complete new adapter or nothing (the old one with --force)", async (t) => {
  const { fx, profile } = profiled();
  const parent = path.join(fx.root, "kills");
  fs.mkdirSync(parent);
  // Reference outputs from complete runs: the new adapter (threshold 0.9) and an older one to be replaced (0.5).
  const ref = (threshold: string) => {
    const out = path.join(fx.root, `ref-${threshold}`);
    const t0 = Date.now();
    const r = cli(["prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", out, "--quiet", "--threshold", threshold]);
    assert.equal(r.status, 0, r.stderr);
    return { hash: snapshot(out, false), ms: Date.now() - t0 };
  };
  const fresh = ref("0.9");
  const old = ref("0.5");
  assert.notDeepEqual(fresh.hash, old.hash);
  const tmpEntries = () => fs.readdirSync(parent).filter((e) => e.includes(".tmp-"));
  const inTmp = (file: string) => () => tmpEntries().some((e) => fs.existsSync(path.join(parent, e, file)));
  const triggers: [string, () => boolean][] = [
    ["temporary folder created", () => tmpEntries().length > 0],
    ["adapter_config.json written in it", inTmp("adapter_config.json")],
    ["adapter_model.safetensors being written", inTmp("adapter_model.safetensors")],
    ["old output moved aside", () => tmpEntries().some((e) => e.endsWith("-old"))],
    ["output in place", () => fs.existsSync(path.join(parent, "out"))],
  ];
  const timed: [string, () => boolean][] = [0.5, 0.8, 0.95, 1.1].map((f) => {
    const at = f * fresh.ms;
    return [`after ${Math.round(at)} ms`, () => false] as [string, () => boolean];
  });
  const failures: string[] = [];
  const outcomes: Record<string, number> = {};
  let midWrite = 0;
  let leftovers = 0;
  for (const force of [false, true]) {
    for (const [name, cond] of [...triggers, ...timed]) {
      const out = path.join(parent, "out");
      fs.rmSync(out, { recursive: true, force: true });
      for (const e of tmpEntries()) fs.rmSync(path.join(parent, e), { recursive: true, force: true });
      if (force) fs.cpSync(path.join(fx.root, "ref-0.5"), out, { recursive: true });
      const child = spawn(process.execPath, [BIN, "prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", out, "--quiet", "--threshold", "0.9", ...(force ? ["--force"] : [])], { stdio: "ignore", env: ENV });
      const wait = name.startsWith("after ") ? Number(name.split(" ")[1]) : 10_000;
      const hit = spinUntil(cond, wait);
      const wasMidWrite = tmpEntries().length > 0;
      child.kill("SIGKILL");
      await exited(child);
      if (wasMidWrite && child.signalCode === "SIGKILL") midWrite++;
      const now = fs.existsSync(out) ? snapshot(out, false) : undefined;
      const state = !now ? "nothing" : isDeepEqual(now, fresh.hash) ? "complete new" : force && isDeepEqual(now, old.hash) ? "complete old" : "partial";
      outcomes[state] = (outcomes[state] ?? 0) + 1;
      leftovers += tmpEntries().length;
      const label = `${force ? "--force, " : ""}kill ${name}${hit || name.startsWith("after ") ? "" : " (not reached)"}${child.signalCode === "SIGKILL" ? "" : " (had exited)"}`;
      if (state === "partial") failures.push(`${label}: the output folder is incomplete or altered`);
      if (force && state === "nothing") t.diagnostic(`${label}: the output path was empty for a moment (the old adapter was in a hidden -old folder)`);
    }
  }
  t.diagnostic(`kills: ${Object.entries(outcomes).map(([k, v]) => `${v} ${k}`).join(", ")}; ${midWrite} while a temporary folder existed; ${leftovers} hidden temporary folders left behind`);
  assert.deepEqual(failures, []);
  assert.ok(midWrite >= 3, `only ${midWrite} kills landed while the adapter was being written`);
});

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
