/**
 * `lora-drop sweep` and `profile --criterion ablation` as a user runs them: the sweep file written and its table
 * printed (base, every candidate, full), typed one-line errors with exit code 2 (a bad threshold list, an output
 * that is an input, an existing output), and the ablation profile's table with the loss increases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { readSweep } from "../../../extension/core/sweep/sweepFile";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture, BIN } from "../../helpers";

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
}

test("sweep writes the sweep file and prints one row per candidate between the base model and the full adapter", () => {
  const fx = makeFixture({ numLayers: 3 }, {}, { count: 6 });
  const profile = path.join(fx.root, "p.json");
  assert.equal(run(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", profile, "--device", "cpu", "--quiet"]).status, 0);
  const out = path.join(fx.root, "sweep.json");
  const args = ["sweep", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--profile", profile, "--data", fx.dataFile, "--out", out, "--device", "cpu"];
  const r = run(args);
  assert.equal(r.status, 0, r.stderr);
  const s = readSweep(out);
  assert.equal(s.points.length, 3);
  const rows = r.stdout.split("\n");
  assert.match(rows[1]!, /^\s*base\s/);
  assert.match(rows[1]!, new RegExp(s.base_loss.toFixed(5)));
  assert.match(rows[s.points.length + 2]!, /^\s*full\s/);
  s.points.forEach((p, i) => assert.match(rows[i + 2]!, new RegExp(`${p.threshold.toFixed(3)}.*${p.loss.toFixed(5)}`)));
  assert.match(r.stdout, /wrote .*sweep\.json/);

  const again = run(args);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /^error \[OUTPUT_EXISTS\]: .*sweep\.json: /);
  const onInput = run([...args.slice(0, -4), "--out", profile, "--device", "cpu", "--force"]);
  assert.equal(onInput.status, 2);
  assert.match(onInput.stderr, /^error \[OUTPUT_IS_INPUT\]: .*p\.json: the output --out is an input/);
  assert.ok(readProfile(profile), "the profile is intact");
  const badList = run([...args, "--force", "--thresholds", "0.5,1.5"]);
  assert.notEqual(badList.status, 0);
  assert.match(badList.stderr, /thresholds in \(0, 1\]/);
});

test("profile --criterion ablation prints each layer's loss increase", () => {
  const fx = makeFixture({ numLayers: 3 }, { zeroBLayers: [1] }, { count: 4 });
  const out = path.join(fx.root, "ablation.json");
  const r = run(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--device", "cpu", "--criterion", "ablation"]);
  assert.equal(r.status, 0, r.stderr);
  const p = readProfile(out);
  assert.equal(p.criterion, "ablation");
  assert.equal(p.importance.per_layer_raw[1], 0);
  assert.match(r.stdout, /loss increase/);
  assert.match(r.stdout, /full adapter loss \d/);
  const misuse = run(["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--force", "--per-module"]);
  assert.equal(misuse.status, 2);
  assert.match(misuse.stderr, /^error \[INVALID_ARGUMENT\]: --per-module applies to --criterion ablation only/);
});
