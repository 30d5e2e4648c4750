/**
 * `lora-drop train` and `lora-drop profile --criterion gradient` as a user runs them: the adapter is written and
 * loads, the summary names the parameter count (reflecting sharing) and the folder, bad options are one line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture, BIN } from "../../helpers";


function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
}

test("train writes a loadable adapter and prints the shared parameter count; gradient profile runs", () => {
  const fx = makeFixture({ numLayers: 3 }, {}, { count: 6, kind: "prompt" });
  const out = path.join(fx.root, "trained");
  const log = path.join(fx.root, "log.jsonl");
  const r = run(["train", "--model", fx.modelDir, "--data", fx.dataFile, "--out", out, "--steps", "3", "--batch-size", "3", "--r", "4",
    "--targets", "q_proj,v_proj", "--shared-layers", "1,2", "--log", log, "--device", "cpu"]);
  assert.equal(r.status, 0, r.stderr);
  // q_proj: layer 0 own + one shared pair of 4·(32+32); v_proj: likewise 4·(32+16).
  assert.match(r.stdout, new RegExp(`trainable LoRA parameters: ${2 * 4 * 64 + 2 * 4 * 48}\\b`));
  assert.match(r.stdout, new RegExp(`wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  const adapter = loadAdapter(out, loadHfModel(fx.modelDir).config);
  assert.equal(adapter.loras.length, 6);
  assert.equal(fs.readFileSync(log, "utf8").trim().split("\n").length, 4);

  const again = run(["train", "--model", fx.modelDir, "--data", fx.dataFile, "--out", out, "--steps", "1"]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /error \[OUTPUT_EXISTS\]/);
  const both = run(["train", "--model", fx.modelDir, "--data", fx.dataFile, "--out", path.join(fx.root, "x"), "--steps", "1", "--epochs", "1"]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--epochs or --steps, not both/);

  const prof = path.join(fx.root, "g.json");
  const g = run(["profile", "--criterion", "gradient", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", prof, "--device", "cpu"]);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(readProfile(prof).criterion, "gradient");
});
