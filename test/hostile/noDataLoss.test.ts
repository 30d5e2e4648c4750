/**
 * Never lose the user's data: `lora-drop profile` and `lora-drop prune` leave the model, adapter, dataset and
 * profile byte-identical; every command refuses every one of its inputs as any of its outputs (OUTPUT_IS_INPUT),
 * with and without --force, directly and through symlinks, and leaves them untouched; prune refuses an existing
 * output without --force; and a prune killed with SIGKILL at any moment (timed kills, and kills triggered the
 * instant the temporary folder, its files or the output appear) leaves at the output path either the complete new
 * adapter or nothing (or, with --force, the complete old one).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { makeFixture, Fixture, treeHashes, BIN } from "../helpers";
import { runCliInProcess } from "./cliInProcess";

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

test("every command refuses each of its inputs as each of its outputs, with and without --force, directly and through symlinks", async (t) => {
  const { fx, data, profile } = profiled();
  const input = { model: fx.modelDir, adapter: fx.adapterDir, data, profile };
  const links = path.join(fx.root, "links");
  fs.mkdirSync(links);
  const before = Object.fromEntries(Object.entries(input).map(([k, p]) => [k, snapshot(p)]));
  const fresh = (name: string) => path.join(fx.root, "fresh", name);
  type Role = keyof typeof input;
  // The command line of each command with every input given and its outputs at fresh paths, and which are which.
  const commands: { cmd: string; inputs: Role[]; outputs: Record<string, string>; args: string[] }[] = [
    { cmd: "profile", inputs: ["model", "adapter", "data"], outputs: { "--out": fresh("p.json") }, args: ["--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--device", "cpu"] },
    // No --model: the model folder recorded in the profile is an input all the same.
    { cmd: "prune", inputs: ["adapter", "profile", "model"], outputs: { "--out": fresh("pruned") }, args: ["--adapter", fx.adapterDir, "--profile", profile] },
    { cmd: "train", inputs: ["model", "data", "adapter"], outputs: { "--out": fresh("trained"), "--log": fresh("log.jsonl"), "--checkpoint-dir": fresh("ckpt") },
      args: ["--model", fx.modelDir, "--data", data, "--adapter", fx.adapterDir, "--steps", "1", "--checkpoint-every", "1", "--device", "cpu"] },
    { cmd: "pipeline", inputs: ["model", "data"], outputs: { "--out": fresh("run") }, args: ["--model", fx.modelDir, "--data", data, "--steps", "1", "--sample-steps", "1", "--device", "cpu"] },
  ];
  const ways: Record<string, (p: string, id: string) => string> = {
    "is": (p) => p,
    "is, through a symlink": (p, id) => { const l = path.join(links, id); fs.symlinkSync(p, l); return l; },
    "contains": (p) => path.dirname(p),
    "lies inside": (p) => path.join(p, "sub", "out"),
    "lies inside, through a symlinked folder": (p, id) => { const l = path.join(links, `${id}-dir`); fs.symlinkSync(path.dirname(p), l); return path.join(l, path.basename(p), "x"); },
  };
  const failures: string[] = [];
  let runs = 0;
  const started = Date.now();
  for (const c of commands) {
    for (const option of Object.keys(c.outputs)) {
      for (const role of c.inputs) {
        for (const [way, make] of Object.entries(ways)) {
          for (const force of [false, true]) {
            const id = `${c.cmd}-${option.slice(2)}-${role}-${runs}`;
            const out = make(input[role], id);
            const outputs = { ...c.outputs, [option]: out };
            const argv = [c.cmd, ...c.args, ...Object.entries(outputs).flat(), "--quiet", ...(force ? ["--force"] : [])];
            const r = await runCliInProcess(argv);
            runs++;
            const label = `${c.cmd} ${option} ${way} ${role}${force ? " --force" : ""}`;
            // A folder that contains this input also holds the others: the message names whichever it meets first.
            const named = way === "contains" ? c.inputs.some((i) => r.stderr.includes(input[i])) : r.stderr.includes(input[role]);
            if (r.code !== 2 || !r.stderr.startsWith(`error [OUTPUT_IS_INPUT]: ${out}: `) || !named || /internal error/.test(r.stderr)) {
              failures.push(`${label}: exit ${r.code}, ${r.stderr.trim().slice(0, 300)}`);
            }
            for (const [k, p] of Object.entries(input)) {
              if (!isDeepEqual(snapshot(p), before[k])) failures.push(`${label}: the ${k} changed`);
            }
            if (fs.existsSync(path.join(fx.root, "fresh"))) failures.push(`${label}: wrote an output although it was refused`);
          }
        }
      }
    }
  }
  t.diagnostic(`${runs} refused runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.deepEqual(failures, []);
  assert.equal(runs, 2 * Object.keys(ways).length * commands.reduce((a, c) => a + c.inputs.length * Object.keys(c.outputs).length, 0));
  // The same refusal from the real command line, once per command.
  for (const c of commands) {
    const r = cli([c.cmd, ...c.args, ...Object.entries({ ...c.outputs, "--out": input[c.inputs[0]!] }).flat(), "--quiet", "--force"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^error \[OUTPUT_IS_INPUT\]: /);
  }
  for (const [k, p] of Object.entries(input)) assert.deepEqual(snapshot(p), before[k], `the ${k} is byte-identical`);
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
