/**
 * Atomic writes: leftovers of a killed writer are cleaned up, and a `--force` replacement interrupted between its
 * two renames gives the previous output back instead of losing it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { writeDirAtomic, writeFileAtomic, removeStaleTemps } from "../../../../extension/core/io/atomicWrite";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

/** A pid that is certainly not running: a child that has already exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

test("a folder appears complete, and an existing one is refused without force", async () => {
  const root = tmpDir();
  const out = path.join(root, "out");
  await writeDirAtomic(out, (tmp) => fs.writeFileSync(path.join(tmp, "a.txt"), "1"));
  assert.equal(fs.readFileSync(path.join(out, "a.txt"), "utf8"), "1");
  await assert.rejects(writeDirAtomic(out, () => {}), (e: unknown) => e instanceof LoraDropError && e.code === "OUTPUT_EXISTS");
  await writeDirAtomic(out, (tmp) => fs.writeFileSync(path.join(tmp, "b.txt"), "2"), true);
  assert.deepEqual(fs.readdirSync(root), ["out"]);
  assert.deepEqual(fs.readdirSync(out), ["b.txt"]);
});

test("a failing fill leaves nothing behind", async () => {
  const root = tmpDir();
  await assert.rejects(writeDirAtomic(path.join(root, "out"), () => { throw new Error("boom"); }));
  assert.deepEqual(fs.readdirSync(root), []);
});

test("leftovers of a dead writer are removed; a moved-aside previous output is restored", () => {
  const root = tmpDir();
  const pid = deadPid();
  const target = path.join(root, "adapter");
  fs.mkdirSync(path.join(root, `.adapter.tmp-${pid}-1`));
  fs.mkdirSync(path.join(root, `.adapter.tmp-${pid}-1-old`));
  fs.writeFileSync(path.join(root, `.adapter.tmp-${pid}-1-old`, "x"), "previous");
  fs.mkdirSync(path.join(root, `.adapter.tmp-${process.pid}-2`), { recursive: true });
  removeStaleTemps(target);
  assert.deepEqual(fs.readdirSync(root).sort(), [`.adapter.tmp-${process.pid}-2`, "adapter"].sort(), "a live writer's temporary stays");
  assert.equal(fs.readFileSync(path.join(target, "x"), "utf8"), "previous");
  const file = path.join(root, "p.json");
  fs.writeFileSync(path.join(root, `.p.json.tmp-${pid}-3`), "half");
  writeFileAtomic(file, "{}");
  assert.ok(!fs.existsSync(path.join(root, `.p.json.tmp-${pid}-3`)));
  assert.equal(fs.readFileSync(file, "utf8"), "{}");
});
