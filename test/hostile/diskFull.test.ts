/**
 * A full disk: `lora-drop prune`, `train` and `profile` writing into a small tmpfs that has room to start the
 * write but not to finish it. Each must exit with code 2 and one line `error [WRITE_FAILED]: <output>: … the disk
 * is full …`, leave nothing in the tmpfs (no temporary file or folder, no partial output, all its space free
 * again), keep an older output that --force was replacing, and leave its inputs byte-identical. Needs root (to
 * mount the tmpfs); skipped with that reason elsewhere.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { makeFixture, treeHashes, BIN } from "../helpers";

const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: "1" };
const PAGE = 4096;
const mounted: string[] = [];

after(() => {
  for (const dir of mounted) spawnSync("umount", [dir]);
});


/** Total bytes of the files under a folder (or of one file). */
function bytesOf(p: string): number {
  const st = fs.statSync(p);
  return st.isDirectory() ? fs.readdirSync(p).reduce((a, e) => a + bytesOf(path.join(p, e)), 0) : st.size;
}

/** Mounts a tmpfs of `bytes` (whole pages) at a fresh folder; a string says why it cannot (not root). */
function mountTmpfs(dir: string, bytes: number): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  const size = Math.max(PAGE, Math.floor(bytes / PAGE) * PAGE);
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const why = `${r.error?.message ?? ""}${r.stderr ?? ""}`;
    if (process.getuid?.() !== 0 || /permission denied|must be superuser|not permitted|EPERM|ENOENT/i.test(why)) return `needs root to mount a tmpfs (${why.trim()})`;
    assert.fail(`mount -t tmpfs failed: ${why}`);
  }
  mounted.push(dir);
  return undefined;
}

/** Runs the CLI while watching `dir`; resolves with its exit, stderr and every name that appeared in `dir`. */
function runWatching(args: string[], dir: string): Promise<{ code: number | null; stderr: string; seen: Set<string> }> {
  const seen = new Set<string>();
  const watcher = fs.watch(dir, (_event, name) => { if (name) seen.add(name.toString()); });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"], env: ENV });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("close", (code) => {
      // inotify events still queued are delivered before a timer fires.
      setTimeout(() => { watcher.close(); resolve({ code, stderr, seen }); }, 50);
    });
  });
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: ENV });
}

test("a full disk: prune, train and profile fail with the output's name and 'the disk is full', and leave nothing behind", async (t) => {
  const fx = makeFixture({ numLayers: 4, tokenizer: false, hiddenSize: 128, numHeads: 4, numKvHeads: 2, intermediateSize: 256, vocabSize: 128 },
    { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], r: 16 }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, `${JSON.stringify({ input_ids: [1, 7, 30, 4, 99, 12] })}\n${JSON.stringify({ input_ids: [1, 2, 3] })}\n`);
  const profile = path.join(fx.root, "profile.json");
  const commands: Record<string, (out: string) => string[]> = {
    profile: (out) => ["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--out", out, "--device", "cpu", "--threads", "1", "--quiet"],
    prune: (out) => ["prune", "--adapter", fx.adapterDir, "--profile", profile, "--out", out, "--quiet"],
    train: (out) => ["train", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", data, "--out", out, "--steps", "2", "--batch-size", "2",
      "--device", "cpu", "--threads", "1", "--quiet"],
  };
  // Complete runs on the ordinary disk: the profile the prune reads, and the size of every output.
  const refSize: Record<string, number> = {};
  for (const [name, args] of Object.entries(commands)) {
    const out = name === "profile" ? profile : path.join(fx.root, `ref-${name}`);
    const r = cli(args(out));
    assert.equal(r.status, 0, r.stderr);
    refSize[name] = bytesOf(out);
  }
  const inputs = [fx.modelDir, fx.adapterDir, data, profile];
  const before = inputs.map((p) => treeHashes(p));

  const cases: { name: string; cmd: string; force?: boolean }[] = [
    { name: "prune", cmd: "prune" },
    { name: "prune --force over an older output", cmd: "prune", force: true },
    { name: "train", cmd: "train" },
    { name: "profile", cmd: "profile" },
  ];
  const seenReport: string[] = [];
  for (const c of cases) {
    await t.test(c.name, async (st) => {
      const mnt = path.join(fx.root, `mnt-${c.cmd}${c.force ? "-force" : ""}`);
      const out = path.join(mnt, c.cmd === "profile" ? "profile.json" : "out");
      const old = path.join(fx.root, "ref-prune");
      // Room for half the new output (plus the older one it replaces): the write starts, then runs out of space.
      const skip = mountTmpfs(mnt, refSize[c.cmd]! / 2 + (c.force ? bytesOf(old) + 2 * PAGE : 0));
      if (skip) return st.skip(skip);
      if (c.force) fs.cpSync(old, out, { recursive: true });
      const oldHash = c.force ? treeHashes(out) : undefined;
      const r = await runWatching([...commands[c.cmd]!(out), ...(c.force ? ["--force"] : [])], mnt);
      seenReport.push(`${c.name}: ${r.stderr.trim()}`);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error \[WRITE_FAILED\]: /);
      assert.ok(r.stderr.includes(`${out}: `), `the message names ${out}: ${r.stderr}`);
      assert.match(r.stderr, /the disk is full/);
      assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, "no stack trace");
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
      const temps = [...r.seen].filter((n) => n.includes(".tmp-"));
      assert.ok(temps.length > 0, `the write started (a temporary appeared): saw ${[...r.seen].join(", ")}`);
      if (c.force) {
        assert.deepEqual(fs.readdirSync(mnt), ["out"], "only the older output is left");
        assert.deepEqual(treeHashes(out), oldHash, "the older output is intact");
      } else {
        assert.deepEqual(fs.readdirSync(mnt), [], "no temporary and no partial output is left");
        const free = fs.statfsSync(mnt);
        assert.equal(free.bfree, free.blocks, "every block of the tmpfs is free again (no unlinked file kept open)");
      }
    });
  }
  t.diagnostic(`messages: ${seenReport.join(" | ")}`);
  assert.deepEqual(inputs.map((p) => treeHashes(p)), before, "the model, adapter, dataset and profile are unchanged");
});
