/**
 * Every reader opens through regularFile.ts: a FIFO, a character device, a socket or a folder is refused at once
 * with FILE_UNREADABLE naming the file (never waited on, never read), and a file over the limit is refused before a
 * byte is read, or while reading when its size lies (a /proc file).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { readRegularFile, readRegularText } from "../../../../extension/core/io/regularFile";
import { readJsonFile } from "../../../../extension/core/io/jsonFile";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

const dir = tmpDir("lora-drop-regular-");

function refused(file: string, code: string, re: RegExp, maxBytes = 1024): void {
  const t0 = Date.now();
  assert.throws(() => readRegularFile(file, { maxBytes, what: "a test file" }), (e: unknown) => e instanceof LoraDropError && e.code === code && e.file === file && re.test(e.message));
  assert.ok(Date.now() - t0 < 1000, `${file} took ${Date.now() - t0} ms to refuse`);
}

test("a FIFO, a character device, a socket and a folder are refused at once, naming the file", async () => {
  const fifo = path.join(dir, "config.json");
  assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
  refused(fifo, "FILE_UNREADABLE", /a FIFO \(named pipe\), not a regular file; give the path of a test file/);
  const zero = path.join(dir, "zero.json");
  fs.symlinkSync("/dev/zero", zero);
  refused(zero, "FILE_UNREADABLE", /a character device, not a regular file/);
  refused(dir, "FILE_UNREADABLE", /a folder, not a regular file/);
  const sock = path.join(dir, "s");
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    refused(sock, "FILE_UNREADABLE", /not a regular file/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.throws(() => readJsonFile(fifo), (e: unknown) => e instanceof LoraDropError && e.code === "FILE_UNREADABLE");
  refused(path.join(dir, "absent.json"), "FILE_NOT_FOUND", /file not found/);
});

test("the size limit holds before reading (a sparse 1 GiB file costs nothing) and while reading (a /proc file says 0 bytes)", () => {
  const big = path.join(dir, "big.json");
  fs.writeFileSync(big, "");
  fs.truncateSync(big, 1024 ** 3);
  const rss = process.memoryUsage().rss;
  assert.throws(() => readRegularFile(big, { maxBytes: 1024, tooLargeCode: "CONFIG_INVALID", what: "a JSON configuration file" }),
    (e: unknown) => e instanceof LoraDropError && e.code === "CONFIG_INVALID" && /file is 1073741824 bytes, more than the 1024-byte limit for a JSON configuration file/.test(e.message));
  assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024);
  const proc = "/proc/self/status";
  assert.equal(fs.statSync(proc).size, 0);
  assert.ok(readRegularText(proc, { maxBytes: 1 << 20 }).includes("Name:"));
  assert.throws(() => readRegularFile(proc, { maxBytes: 16 }), /more than the 16-byte limit/);
  const exact = path.join(dir, "exact");
  fs.writeFileSync(exact, "x".repeat(16));
  assert.equal(readRegularFile(exact, { maxBytes: 16 }).length, 16);
  refused(exact, "FILE_UNREADABLE", /17|16 bytes, more than the 15-byte limit/, 15);
});
