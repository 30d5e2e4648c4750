/**
 * The sweep and the ablation criterion on the torch engine against the onnx engine, on models and adapters written
 * by transformers' and PEFT's own save_pretrained: Llama with grouped-query attention (rank and alpha patterns),
 * GPT-2 (Conv1D, fan_in_fan_out, layers_to_transform) and a RoBERTa sequence classifier (its head saved through
 * modules_to_save). Every point's loss within 1e-5 relative and the same accuracy, base_loss and full_loss too; the
 * ablation's raw increases within 1e-5 of the full loss, its importance within 1e-5; a zero LoRA's ablation is 0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import type { ProfileFile } from "../../../extension/core/importance/profileSchema";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter, writeAdapter } from "../../../extension/core/adapter/peftAdapter";
import { buildPrunedAdapter } from "../../../extension/core/prune/prune";
import { distinctThresholds } from "../../../extension/core/sweep/thresholds";
import { runSweep, type SweepOptions } from "../../../extension/core/sweep/sweep";
import type { SweepFile } from "../../../extension/core/sweep/sweepSchema";
import { validateSweep } from "../../../extension/core/sweep/sweepFile";
import { FixtureArch, makeTorchFixtures, torchEnvOrSkip } from "../../torchEnv";
import { tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const ARCHS: FixtureArch[] = ["llama", "gpt2", "roberta"];
const fixtures = env ? makeTorchFixtures(env, ARCHS) : undefined;
const torch = () => ({ engine: "torch" as const, device: "cpu" as const, python: env!.python, env: env!.env });

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

/** The worst relative loss difference of two sweeps of the same candidates, after checking they are the same candidates. */
function compareSweeps(what: string, t: SweepFile, o: SweepFile): number {
  validateSweep(t, what);
  assert.deepEqual([t.engine, t.measured.device, o.engine], ["torch", "torch cpu float32", "onnx"], what);
  assert.deepEqual([t.measured.tokens, t.measured.targets, t.measured.examples], [o.measured.tokens, o.measured.targets, o.measured.examples], what);
  assert.deepEqual(t.points.map(({ loss: _l, ...p }) => p), o.points.map(({ loss: _l, ...p }) => p), `${what}: other candidates, or other accuracies`);
  assert.equal(t.base_accuracy, o.base_accuracy, what);
  assert.equal(t.full_accuracy, o.full_accuracy, what);
  const worst = Math.max(rel(t.base_loss, o.base_loss), rel(t.full_loss, o.full_loss), ...t.points.map((p, i) => rel(p.loss, o.points[i]!.loss)));
  assert.ok(worst <= 1e-5, `${what}: a loss differs by ${worst} relative`);
  // The candidates differ from each other by far more than the engines do.
  assert.ok(Math.abs(o.base_loss - o.full_loss) > 1e-3, `${what}: the adapter changes nothing`);
  return worst;
}

test("torch-engine sweeps equal onnx-engine sweeps (llama GQA, gpt2, roberta; share and drop)", { skip }, async (t) => {
  // Candidates whose shared LoRA stands for two or more layers (a best rank-r approximation, not a layer's own pair).
  let sharedByMany = 0;
  for (const arch of ARCHS) {
    await t.test(arch, async () => {
      const fx = fixtures![arch];
      const paths = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, batchSize: 4 };
      const profile = await profileAdapter({ ...paths, device: "cpu" });
      // The Llama fixture's alpha pattern gives layer 1's v_proj its own scale: one shared LoRA cannot stand for it
      // and another layer, so its share sweeps measure the thresholds prune can build (drop mode measures them all).
      const runs: Partial<SweepOptions>[] = arch !== "llama" ? [{ mode: "share" }]
        : [{ mode: "drop" }, ...[false, true].map((perModule) => ({ mode: "share" as const, perModule, thresholds: buildable(fx, profile, perModule) }))];
      for (const run of runs) {
        const opts: SweepOptions = { ...paths, profile, ...run };
        const o = await runSweep({ ...opts, device: "cpu" });
        const got = await runSweep({ ...opts, ...torch() });
        const what = `${arch} ${run.mode}${run.perModule ? " per module" : ""}`;
        const worst = compareSweeps(what, got, o);
        if (run.mode === "share") sharedByMany += o.points.flatMap((p) => (Array.isArray(p.shared_layers) ? [p.shared_layers] : Object.values(p.shared_layers))).filter((l) => l.length >= 2).length;
        t.diagnostic(`${what}: ${o.points.length} points, worst loss difference ${worst.toExponential(2)} relative`);
      }
    });
  }
  assert.ok(sharedByMany >= 2, `only ${sharedByMany} candidates share one LoRA over several layers`);
});

/** The profile's distinct thresholds at which buildPrunedAdapter shares a layer and succeeds. */
function buildable(fx: { modelDir: string; adapterDir: string }, profile: ProfileFile, perModule: boolean): number[] {
  const adapter = loadAdapter(fx.adapterDir, loadHfModel(fx.modelDir).config);
  const positions: Record<string, number[]> = {};
  for (const m of adapter.modules) positions[m] = adapter.loras.filter((l) => l.module === m).map((l) => profile.layers.indexOf(l.layer));
  const out = distinctThresholds(profile, positions, perModule).filter((threshold) => {
    try {
      return buildPrunedAdapter(adapter, profile, { threshold, mode: "share", perModule }).sharedInit.length > 0;
    } catch {
      return false;
    }
  });
  assert.ok(out.length >= 1, "no threshold shares a layer");
  return out;
}

/** Worst raw difference (relative to the full adapter's loss) and worst importance difference of two ablation profiles. */
function compareAblations(what: string, t: ProfileFile, o: ProfileFile): { raw: number; importance: number } {
  assert.deepEqual([t.engine, t.device, t.criterion, o.engine], ["torch", "torch cpu float32", "ablation", "onnx"], what);
  assert.deepEqual(t.ablation!.per_module, o.ablation!.per_module, what);
  const full = o.ablation!.full_loss;
  assert.ok(rel(t.ablation!.full_loss, full) <= 1e-5, `${what}: full loss ${t.ablation!.full_loss} vs ${full}`);
  let raw = 0;
  let importance = 0;
  const rows: [number[], number[], number[], number[]][] = [[t.importance.per_layer_raw, o.importance.per_layer_raw, t.importance.per_layer, o.importance.per_layer]];
  for (const m of o.modules) rows.push([t.importance.per_module_raw[m]!, o.importance.per_module_raw[m]!, t.importance.per_module[m]!, o.importance.per_module[m]!]);
  for (const [tr, or, ti, oi] of rows) {
    or.forEach((want, i) => {
      raw = Math.max(raw, Math.abs(tr[i]! - want) / full);
      importance = Math.max(importance, Math.abs(ti[i]! - oi[i]!));
      // A layer without LoRA is removed by neither engine: exactly 0 on both.
      if (want === 0) assert.equal(tr[i], 0, `${what}: entry ${i} is ${tr[i]} on torch, 0 on onnx`);
    });
  }
  assert.ok(o.importance.per_layer_raw.some((g) => Math.abs(g) > 1e-3), `${what}: no layer's removal changes the loss`);
  assert.ok(raw <= 1e-5, `${what}: a raw ablation differs by ${raw} of the full loss`);
  assert.ok(importance <= 1e-5, `${what}: an importance differs by ${importance}`);
  return { raw, importance };
}

test("torch-engine ablation profiles equal onnx-engine ones (llama per module, gpt2, roberta); a zero LoRA's ablation is exactly 0", { skip }, async (t) => {
  for (const arch of ARCHS) {
    await t.test(arch, async () => {
      const fx = fixtures![arch];
      const opts = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, batchSize: 4, criterion: "ablation" as const, ablationPerModule: arch === "llama" };
      const o = await profileAdapter({ ...opts, device: "cpu" });
      const got = await profileAdapter({ ...opts, ...torch() });
      const d = compareAblations(arch, got, o);
      t.diagnostic(`${arch}: raw within ${d.raw.toExponential(2)} of the full loss, importance within ${d.importance.toExponential(2)}`);
    });
  }
  await t.test("a layer whose LoRA is zero", async () => {
    const fx = fixtures!.llama;
    const model = loadHfModel(fx.modelDir);
    const adapter = loadAdapter(fx.adapterDir, model.config);
    const dir = path.join(tmpDir(), "zero-layer-1");
    await writeAdapter(dir, adapter.config, adapter.loras.map((l) => (l.layer === 1 ? { ...l, B: new Float32Array(l.B.length) } : l)), { format: "peft" });
    const opts = { modelDir: fx.modelDir, adapterDir: dir, dataPath: fx.dataFile, batchSize: 4, criterion: "ablation" as const, ablationPerModule: true };
    const got = await profileAdapter({ ...opts, ...torch() });
    assert.equal(got.importance.per_layer_raw[1], 0);
    for (const m of got.modules) assert.equal(got.importance.per_module_raw[m]![1], 0, m);
    assert.ok(got.importance.per_layer_raw[0] !== 0 && got.importance.per_layer_raw[2] !== 0);
    compareAblations("zero layer", got, await profileAdapter({ ...opts, device: "cpu" }));
  });
});
