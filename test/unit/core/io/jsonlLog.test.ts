/**
 * The training log: lines appended to a regular file, emptied at the start of a fresh run and kept for a resumed
 * one; a folder, a FIFO nobody reads and a device such as /dev/full are WRITE_FAILED errors naming the file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { appendJsonl, startJsonlLog } from "../../../../extension/core/io/jsonlLog";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

const dir = tmpDir("lora-drop-log-");

test("a fresh log is emptied, a resumed one appended to, its folder created", () => {
  const file = path.join(dir, "runs", "a", "log.jsonl");
  startJsonlLog(file, true);
  appendJsonl(file, { step: 1 });
  appendJsonl(file, { step: 2 });
  startJsonlLog(file, false);
  appendJsonl(file, { step: 3 });
  assert.deepEqual(fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).step), [1, 2, 3]);
  startJsonlLog(file, true);
  assert.equal(fs.readFileSync(file, "utf8"), "");
});

test("a folder, a FIFO without a reader and /dev/full are refused with WRITE_FAILED, at once", () => {
  const fifo = path.join(dir, "log.fifo");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  const full = path.join(dir, "full.jsonl");
  fs.symlinkSync("/dev/full", full);
  for (const [file, why] of [[dir, /it is a folder/], [fifo, /FIFO or device with no reader/], [full, /a character device, not a regular file/]] as const) {
    const t0 = Date.now();
    assert.throws(() => startJsonlLog(file, true), (e: unknown) => e instanceof LoraDropError && e.code === "WRITE_FAILED" && e.file === file && why.test(e.message));
    assert.throws(() => appendJsonl(file, { step: 1 }), (e: unknown) => e instanceof LoraDropError && e.code === "WRITE_FAILED");
    assert.ok(Date.now() - t0 < 1000);
  }
});
