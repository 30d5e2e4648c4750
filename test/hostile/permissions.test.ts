/**
 * Permission errors, real ones: the CLI runs as the unprivileged user `nobody` (uid 65534) on inputs in a
 * world-readable folder. An output folder it may not write to, and each input made unreadable in turn (chmod 000,
 * or a folder it may not enter), must give exit code 2 and one line `error [CODE]: <that file>: …` — WRITE_FAILED
 * with "permission denied" for outputs, FILE_UNREADABLE for inputs — write nothing, and leave the inputs unchanged.
 * Needs root (to run a process as another user); skipped with that reason elsewhere. A checkout nobody cannot
 * reach (a clone under a 0700 folder) is run from a world-readable copy of the CLI (nobodyCli.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { writeTinyModel, writeTinyAdapter, writeSyntheticDataset } from "../../extension/core/demo/tinyModel";
import { treeHashes } from "../helpers";
import { cliFor } from "./nobodyCli";

const NOBODY = 65534;
const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: "1" };

/** The launcher nobody runs, chosen once root is known (see the test). */
let bin = "";

/** Hashes and modes of the files under a folder. */
const snapshot = (p: string) => treeHashes(p, (st) => st.mode.toString(8));

/** Runs the CLI as `nobody`. */
function asNobody(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: ENV, uid: NOBODY, gid: NOBODY, timeout: 120_000 });
}

test("as an unprivileged user: unwritable outputs and unreadable inputs give a typed error naming the file, and nothing is written", async (t) => {
  if (process.getuid?.() !== 0) return t.skip("needs root to run the CLI as another user (nobody)");
  const cli = cliFor(NOBODY);
  if ("skip" in cli) return t.skip(cli.skip);
  bin = cli.bin;
  if (cli.copied) t.diagnostic(`nobody cannot reach the checkout; running a copy of the CLI: ${bin}`);
  // Everything under a folder anyone may enter and read (os.tmpdir() subfolders from mkdtemp are 0700).
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-perm-"));
  process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
  fs.chmodSync(root, 0o755);
  const modelDir = path.join(root, "model");
  const cfg = writeTinyModel(modelDir, { tokenizer: true, hiddenSize: 16, numHeads: 4, numKvHeads: 2, numLayers: 2, intermediateSize: 32, seed: 3 });
  const adapterDir = path.join(root, "adapter");
  writeTinyAdapter(adapterDir, cfg, { seed: 4, r: 2, targets: ["q_proj", "v_proj"] });
  const data = path.join(root, "data.jsonl");
  writeSyntheticDataset(data, { seed: 5, count: 4 });
  const profile = path.join(root, "profile.json");
  const locked = path.join(root, "locked"); // root's, 0755: nobody may not write here
  const open = path.join(root, "open"); // 0777: nobody may write here
  fs.mkdirSync(locked);
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const profileArgs = (out: string) => ["profile", "--model", modelDir, "--adapter", adapterDir, "--data", data, "--out", out, "--device", "cpu", "--threads", "1", "--max-tokens", "16", "--quiet"];
  const pruneArgs = (out: string) => ["prune", "--adapter", adapterDir, "--profile", profile, "--out", out, "--quiet"];
  const trainArgs = (out: string) => ["train", "--model", modelDir, "--data", data, "--out", out, "--steps", "1", "--batch-size", "2", "--max-length", "16", "--device", "cpu", "--threads", "1", "--quiet"];

  // The control: nobody can run every command when it may write the output, so each failure below is the permission's.
  const ok = asNobody(profileArgs(path.join(open, "profile.json")));
  if (ok.error && (ok.error as NodeJS.ErrnoException).code === "EPERM") return t.skip("cannot start a process as nobody here");
  assert.equal(ok.status, 0, ok.stderr);
  fs.copyFileSync(path.join(open, "profile.json"), profile);
  for (const args of [pruneArgs(path.join(open, "pruned")), trainArgs(path.join(open, "trained"))]) {
    const r = asNobody(args);
    assert.equal(r.status, 0, `${args[0]} as nobody: ${r.stderr}`);
  }
  fs.rmSync(open, { recursive: true });
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const inputs = [modelDir, adapterDir, data, profile];
  const before = inputs.map(snapshot);

  const cases: { name: string; args: string[]; out: string; code: string; names: string; deny?: [string, number]; says?: RegExp }[] = [
    { name: "profile into a folder nobody may write", args: profileArgs(path.join(locked, "p.json")), out: path.join(locked, "p.json"), code: "WRITE_FAILED", names: path.join(locked, "p.json"), says: /permission denied/ },
    { name: "prune into a folder nobody may write", args: pruneArgs(path.join(locked, "pruned")), out: path.join(locked, "pruned"), code: "WRITE_FAILED", names: path.join(locked, "pruned"), says: /permission denied/ },
    { name: "train into a folder nobody may write", args: trainArgs(path.join(locked, "trained")), out: path.join(locked, "trained"), code: "WRITE_FAILED", names: path.join(locked, "trained"), says: /permission denied/ },
    ...(["model.safetensors", "config.json", "tokenizer.json"].map((f) => ({
      name: `an unreadable ${f}`, args: profileArgs(path.join(open, "p.json")), out: path.join(open, "p.json"), code: "FILE_UNREADABLE", names: path.join(modelDir, f), deny: [path.join(modelDir, f), 0o000] as [string, number],
    }))),
    ...(["adapter_model.safetensors", "adapter_config.json"].map((f) => ({
      name: `an unreadable ${f}`, args: pruneArgs(path.join(open, "pruned")), out: path.join(open, "pruned"), code: "FILE_UNREADABLE", names: path.join(adapterDir, f), deny: [path.join(adapterDir, f), 0o000] as [string, number],
    }))),
    { name: "an unreadable dataset", args: trainArgs(path.join(open, "trained")), out: path.join(open, "trained"), code: "FILE_UNREADABLE", names: data, deny: [data, 0o000] },
    { name: "an unreadable profile", args: pruneArgs(path.join(open, "pruned")), out: path.join(open, "pruned"), code: "FILE_UNREADABLE", names: profile, deny: [profile, 0o000] },
    { name: "a model folder nobody may enter", args: profileArgs(path.join(open, "p.json")), out: path.join(open, "p.json"), code: "FILE_UNREADABLE", names: modelDir, deny: [modelDir, 0o700] },
  ];
  const seen: string[] = [];
  for (const c of cases) {
    await t.test(c.name, () => {
      const mode = c.deny ? fs.statSync(c.deny[0]).mode & 0o777 : 0;
      if (c.deny) fs.chmodSync(c.deny[0], c.deny[1]);
      let r;
      try {
        r = asNobody(c.args);
      } finally {
        if (c.deny) fs.chmodSync(c.deny[0], mode);
      }
      seen.push(`${c.name}: ${r.stderr.trim()}`);
      assert.equal(r.status, 2, r.stderr);
      assert.ok(r.stderr.startsWith(`error [${c.code}]: ${c.names}`), `expected error [${c.code}] naming ${c.names}, got: ${r.stderr}`);
      if (c.says) assert.match(r.stderr, c.says);
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line, no stack trace");
      assert.equal(fs.existsSync(c.out), false, "nothing written at the output");
      assert.deepEqual(fs.readdirSync(path.dirname(c.out)), [], "no temporary left beside it");
    });
  }
  t.diagnostic(`messages: ${seen.join(" | ")}`);
  assert.deepEqual(inputs.map(snapshot), before, "inputs unchanged (content and mode)");
});
