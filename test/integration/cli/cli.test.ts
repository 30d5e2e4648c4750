/**
 * The CLI as a user runs it: `--help`, `profile` writing a profile and printing the summary, and a clear one-line
 * error with exit code 2 for bad input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture, BIN } from "../../helpers";


function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
}

test("--help lists the commands", () => {
  const r = run(["--help"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /profile/);
});

test("profile writes a profile and prints the ranked table", () => {
  const fx = makeFixture({ numLayers: 3 }, {}, { count: 5 });
  const out = path.join(fx.root, "profile.json");
  const r = run(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--device", "cpu"]);
  assert.equal(r.status, 0, r.stderr);
  const p = readProfile(out);
  const top = p.importance.per_layer.indexOf(Math.max(...p.importance.per_layer));
  const firstRow = r.stdout.split("\n")[1]!.trim().split(/\s+/);
  assert.equal(Number(firstRow[1]), top, "the first row is the most important layer");
  assert.match(r.stdout, /ran on: onnx cpu, fp32;/);
  assert.match(r.stdout, new RegExp(`wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
});

test("a bad adapter folder is one clear line and exit code 2", () => {
  const fx = makeFixture({ numLayers: 2 }, {}, { count: 2 });
  const r = run(["profile", "--model", fx.modelDir, "--adapter", path.join(fx.root, "missing"), "--data", fx.dataFile, "--out", path.join(fx.root, "p.json")]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /error \[FILE_NOT_FOUND\]: .*missing: adapter folder not found/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
});

test("profile refuses to overwrite an existing file unless --force", () => {
  const fx = makeFixture({ numLayers: 2 }, {}, { count: 2 });
  const out = path.join(fx.root, "p.json");
  fs.writeFileSync(out, "keep me");
  const args = ["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--device", "cpu", "--quiet"];
  const r = run(args);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /OUTPUT_EXISTS/);
  assert.equal(fs.readFileSync(out, "utf8"), "keep me");
  assert.equal(run([...args, "--force"]).status, 0);
  assert.equal(readProfile(out).layers.length, 2);
});
