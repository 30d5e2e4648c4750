/**
 * `sweep` on a Llama fixture: every point's loss equals the loss of the adapter `prune` writes at that threshold,
 * computed by the independent float64 reference (share and drop); the base and full losses equal the reference's
 * without LoRA and with the adapter as is; T = 1 equals the full adapter; an adapter whose B is zero gives the base
 * loss everywhere; streamed and whole-graph sweeps agree; the file round-trips through its validator.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { writeTinyAdapter } from "../../../extension/core/demo/tinyModel";
import { runSweep } from "../../../extension/core/sweep/sweep";
import { readSweep, writeSweep } from "../../../extension/core/sweep/sweepFile";
import type { SweepFile } from "../../../extension/core/sweep/sweepSchema";
import { referenceLoss } from "../train/trainReference";
import { blockBytes } from "../../../extension/core/stream/memoryBudget";
import { streamedHeadBytes } from "../../../extension/core/evaluate/loraSets";
import { makeFixture } from "../../helpers";
import { isLoraDropError } from "../../../extension/core/util/errors";

const SEQS = [[1, 45, 66, 29, 33, 26, 9], [1, 31, 181, 7], [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]];
const MASKS = SEQS.map((ids) => ids.map((_, t) => t > 0));

/** A 5-layer fixture with q/v/down LoRA, its profile, and a dataset of token ids. */
async function fixture(adapter: Parameters<typeof makeFixture>[1] = {}) {
  const fx = makeFixture({ numLayers: 5, tokenizer: false }, { targets: ["q_proj", "v_proj", "down_proj"], ...adapter }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, SEQS.map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const profileFile = path.join(fx.root, "profile.json");
  writeProfile(profileFile, await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu" }));
  return { fx, data, profileFile, model: loadHfModel(fx.modelDir) };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** Each point against the reference loss of the adapter `prune` writes at its threshold. */
async function checkAgainstPrune(f: Awaited<ReturnType<typeof fixture>>, sweep: SweepFile): Promise<void> {
  for (const [i, p] of sweep.points.entries()) {
    const out = path.join(f.fx.root, `pruned-${sweep.mode}-${i}`);
    const res = await pruneAdapter({ adapterDir: f.fx.adapterDir, profile: f.profileFile, outDir: out, threshold: p.threshold, mode: sweep.mode });
    assert.deepEqual(res.record.kept_layers, p.kept_layers, `T=${p.threshold}: the kept set prune makes`);
    assert.equal(res.paramsAfter, p.lora_params);
    const written = loadAdapter(out, f.model.config).loras;
    const ref = referenceLoss(f.model, written, SEQS, MASKS);
    assert.ok(rel(p.loss, ref) <= 1e-5, `${sweep.mode} T=${p.threshold}: sweep loss ${p.loss} vs reference ${ref} of the written adapter`);
  }
}

test("share sweep: each point equals the reference loss of the pruned adapter prune writes; base, full and T = 1", async () => {
  const f = await fixture();
  const sweep = await runSweep({ modelDir: f.fx.modelDir, adapterDir: f.fx.adapterDir, profile: f.profileFile, dataPath: f.data, device: "cpu" });
  const source = loadAdapter(f.fx.adapterDir, f.model.config).loras;
  assert.ok(rel(sweep.base_loss, referenceLoss(f.model, [], SEQS, MASKS)) <= 1e-5, "base loss");
  assert.ok(rel(sweep.full_loss, referenceLoss(f.model, source, SEQS, MASKS)) <= 1e-5, "full loss");
  assert.equal(sweep.points.length, 5, "every distinct kept-set size of the 5 LoRA layers");
  assert.deepEqual(sweep.points.map((p) => (p.kept_layers as number[]).length), [1, 2, 3, 4, 5]);
  // Sharing a single layer saves nothing (its shared pair is as large as its own), so the last two tie.
  assert.ok(sweep.points.every((p, i) => i === 0 || p.lora_params >= sweep.points[i - 1]!.lora_params), "sorted by lora_params");
  const last = sweep.points[sweep.points.length - 1]!;
  assert.equal(last.threshold, 1);
  assert.equal(last.loss, sweep.full_loss, "T = 1 keeps every layer: the adapter as is");
  assert.equal(sweep.measured.examples, 3);
  assert.equal(sweep.measured.targets, SEQS.reduce((a, s) => a + s.length - 1, 0));
  await checkAgainstPrune(f, sweep);

  const file = path.join(f.fx.root, "sweep.json");
  writeSweep(file, sweep, { files: [f.profileFile, f.data], folders: [f.fx.modelDir, f.fx.adapterDir] });
  assert.deepEqual(readSweep(file), sweep);
  assert.throws(() => writeSweep(file, sweep, { files: [], folders: [] }), /OUTPUT_EXISTS|already exists/);
  assert.throws(() => writeSweep(f.profileFile, sweep, { files: [f.profileFile], folders: [] }, true), (e: unknown) => isLoraDropError(e) && e.code === "OUTPUT_IS_INPUT");
  assert.throws(() => writeSweep(path.join(f.fx.adapterDir, "s.json"), sweep, { files: [], folders: [f.fx.adapterDir] }), (e: unknown) => isLoraDropError(e) && e.code === "OUTPUT_IS_INPUT");
});

test("drop sweep and given thresholds: points equal the reference loss of the dropped adapters", async () => {
  const f = await fixture();
  const sweep = await runSweep({ modelDir: f.fx.modelDir, adapterDir: f.fx.adapterDir, profile: f.profileFile, dataPath: f.data, device: "cpu", mode: "drop", thresholds: [0.5, 0.8, 0.95] });
  assert.equal(sweep.mode, "drop");
  assert.ok(sweep.points.length >= 2 && sweep.points.length <= 3);
  await checkAgainstPrune(f, sweep);
});

test("an adapter whose B is zero gives the base loss at every threshold", async () => {
  const f = await fixture();
  // The same shapes with B = 0 everywhere: the profile above still matches it (same parameter table).
  const zero = path.join(f.fx.root, "zero-adapter");
  writeTinyAdapter(zero, f.model.config, { targets: ["q_proj", "v_proj", "down_proj"], zeroBLayers: [0, 1, 2, 3, 4] });
  for (const mode of ["share", "drop"] as const) {
    const sweep = await runSweep({ modelDir: f.fx.modelDir, adapterDir: zero, profile: f.profileFile, dataPath: f.data, device: "cpu", mode });
    assert.equal(sweep.points.length, 5);
    assert.equal(sweep.full_loss, sweep.base_loss);
    for (const p of sweep.points) assert.equal(p.loss, sweep.base_loss, `${mode} T=${p.threshold}`);
  }
});

test("streamed sweep (block by block, configurations carried together) equals the whole graph", async () => {
  const f = await fixture();
  const opts = { modelDir: f.fx.modelDir, adapterDir: f.fx.adapterDir, profile: f.profileFile, dataPath: f.data, device: "cpu" as const };
  const whole = await runSweep({ ...opts, stream: "off" });
  // A budget that holds two configurations' hidden states beside one layer: four passes over the 7 configurations.
  const cfg = f.model.config;
  const tokens = SEQS.reduce((a, s) => a + s.length, 0);
  const budget = blockBytes(cfg, { batch: 3, seq: 10, totalTokens: 2 * tokens, layers: 5 }, 1).total + streamedHeadBytes(cfg, 3, 10);
  const streamed = await runSweep({ ...opts, stream: "on", memoryBudget: budget });
  assert.equal(streamed.measured.streamed, true);
  assert.equal(streamed.measured.configurations_per_pass, 2);
  assert.equal(whole.measured.streamed, false);
  assert.ok(rel(streamed.base_loss, whole.base_loss) <= 1e-5);
  assert.ok(rel(streamed.full_loss, whole.full_loss) <= 1e-5);
  streamed.points.forEach((p, i) => assert.ok(rel(p.loss, whole.points[i]!.loss) <= 1e-5, `T=${p.threshold}: ${p.loss} vs ${whole.points[i]!.loss}`));
});
