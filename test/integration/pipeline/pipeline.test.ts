/**
 * `lora-drop pipeline` end to end on a tiny fixture: the files it writes, the sample's strata, the selection
 * recomputed by hand from profile.json, the LoRA-drop adapter's structure and parameter count, the held-out losses
 * against the plain-loop float64 reference, the same data order for both runs, events, cancellation and the CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { runPipeline, PipelineEvent, PIPELINE_FILES, PipelineOptions } from "../../../extension/core/pipeline/pipeline";
import { PipelineReport } from "../../../extension/core/pipeline/report";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { loadHfModel, HfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraDropError } from "../../../extension/core/util/errors";
import { writeTinyModel } from "../../../extension/core/demo/tinyModel";
import { Rng } from "../../../extension/core/util/random";
import { referenceForward } from "../../reference/llamaReference";
import { tmpDir, BIN } from "../../helpers";
import { LoraModule, ownParam } from "../../../extension/core/adapter/loraModule";

const LABELS = ["red", "green", "blue"];

/** A 4-layer model without tokenizer (vocab 256) and 40 pre-tokenised examples in three labelled groups. */
function fixture() {
  const root = tmpDir();
  const modelDir = path.join(root, "model");
  writeTinyModel(modelDir, { numLayers: 4, tokenizer: false, seed: 5 });
  const rng = new Rng(9);
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    const label = LABELS[i % 3 === 0 ? 0 : i % 2 === 0 ? 1 : 2]!;
    const base = 10 + 60 * LABELS.indexOf(label);
    const ids = [1, ...Array.from({ length: 4 + rng.int(6) }, (_, t) => base + ((t * 7 + rng.int(3)) % 50))];
    lines.push(JSON.stringify({ input_ids: ids, label }));
  }
  const dataFile = path.join(root, "data.jsonl");
  fs.writeFileSync(dataFile, lines.join("\n") + "\n");
  return { root, modelDir, dataFile, records: lines.map((l) => JSON.parse(l) as { input_ids: number[]; label: string }) };
}

function options(fx: ReturnType<typeof fixture>, out: string, extra: Partial<PipelineOptions> = {}): PipelineOptions {
  return {
    modelDir: fx.modelDir, dataPath: fx.dataFile, outDir: out, sampleFraction: 0.25, threshold: 0.6, stratifyBy: "label", evalFraction: 0.2,
    r: 2, loraAlpha: 4, targets: ["q_proj", "v_proj"], steps: 4, sampleSteps: 3, lr: 0.05, batchSize: 4, seed: 3, device: "cpu", threads: 1,
    ...extra,
  };
}

/** Mean next-token cross-entropy over every target token (t ≥ 1) of the examples, by the float64 reference. */
function referenceLoss(model: HfModel, loras: LoraModule[], seqs: number[][]): number {
  let sum = 0, n = 0;
  const V = model.config.vocabSize;
  for (const ids of seqs) {
    const { logits } = referenceForward(model, loras, ids);
    for (let t = 1; t < ids.length; t++) {
      const row = logits.subarray((t - 1) * V, t * V);
      const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[ids[t]!]!;
      n++;
    }
  }
  return sum / n;
}

test("the pipeline writes the adapter, profile and report, and its figures check out independently", async () => {
  const fx = fixture();
  const out = path.join(fx.root, "run");
  const events: PipelineEvent[] = [];
  const report = await runPipeline(options(fx, out), { onEvent: (e) => events.push(e) });
  for (const f of Object.values(PIPELINE_FILES)) assert.ok(fs.existsSync(path.join(out, f)), f);
  const onDisk = JSON.parse(fs.readFileSync(path.join(out, PIPELINE_FILES.report_json), "utf8")) as PipelineReport;
  assert.deepEqual(onDisk.params, report.params);
  assert.match(fs.readFileSync(path.join(out, PIPELINE_FILES.report_md), "utf8"), /## Losses[\s\S]*held-out/);

  // Split and sample: 40 examples, 8 held out (20%), 32 for training, 8 sampled (25%), in proportion to labels.
  assert.deepEqual([report.data.examples, report.data.eval, report.data.train, report.data.sample], [40, 8, 32, 8]);
  const sampled = fs.readFileSync(path.join(out, PIPELINE_FILES.sample), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { label: string });
  assert.equal(sampled.length, 8);
  for (const s of report.data.strata) {
    assert.equal(sampled.filter((x) => x.label === s.key).length, s.sample, `stratum ${s.key}`);
    assert.ok(Math.abs(s.sample - (8 * s.train) / 32) < 1, `${s.key}: ${s.sample} of ${s.train} is proportional`);
  }
  assert.equal(new Set(report.data.eval_indices).size, 8);

  // Selection from profile.json by hand: rank by importance, keep until the running sum reaches 0.6.
  const profile = readProfile(path.join(out, PIPELINE_FILES.profile));
  assert.equal(profile.adapter.path, path.join(path.resolve(out), PIPELINE_FILES.sample_adapter), "paths point into the final folder");
  const order = profile.importance.per_layer.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const kept: number[] = [];
  let sum = 0;
  for (const [v, i] of order) { if (kept.length && sum >= 0.6) break; kept.push(i); sum += v; }
  kept.sort((a, b) => a - b);
  const shared = [0, 1, 2, 3].filter((l) => !kept.includes(l));
  assert.deepEqual(report.selection.kept, kept);
  assert.deepEqual(report.selection.shared, shared);

  // The final adapter: kept layers own their pairs, shared layers bound to one pair per module.
  const model = loadHfModel(fx.modelDir);
  const drop = loadAdapter(path.join(out, PIPELINE_FILES.adapter), model.config);
  assert.deepEqual(drop.loraDrop?.kept_layers, kept);
  for (const l of drop.loras) assert.equal(l.param, kept.includes(l.layer) ? ownParam(l.layer, l.module) : `shared.${l.module}`);
  // q and v: r·(in + out) = 2·(32 + 32) and 2·(32 + 16) per layer; LoRA-drop keeps |kept| of each plus one shared.
  const perLayer = 2 * (32 + 32) + 2 * (32 + 16);
  assert.equal(report.params.lora, 4 * perLayer);
  assert.equal(report.params.lora_drop, (kept.length + (shared.length ? 1 : 0)) * perLayer);

  // Held-out losses against the float64 reference.
  const evalSeqs = report.data.eval_indices.map((i) => fx.records[i]!.input_ids);
  const refDrop = referenceLoss(model, drop.loras, evalSeqs);
  assert.ok(Math.abs(report.lora_drop.eval_loss! - refDrop) < 1e-4 * refDrop, `LoRA-drop eval ${report.lora_drop.eval_loss} vs reference ${refDrop}`);
  const full = loadAdapter(path.join(out, PIPELINE_FILES.lora_adapter), model.config);
  const refFull = referenceLoss(model, full.loras, evalSeqs);
  assert.ok(Math.abs(report.lora!.eval_loss! - refFull) < 1e-4 * refFull);
  const refBase = referenceLoss(model, [], evalSeqs);
  assert.ok(Math.abs(report.base_eval_loss! - refBase) < 1e-4 * refBase);

  // Same steps, same data in the same order: at step 1 both LoRAs are zero (B = 0), so the losses are equal.
  assert.equal(report.lora!.losses.length, 4);
  assert.equal(report.lora_drop.losses.length, 4);
  assert.equal(report.lora!.losses[0]!.loss, report.lora_drop.losses[0]!.loss);

  // Events: phases in order, one step event per optimiser step carrying the reported loss.
  const phases = events.filter((e) => e.message !== undefined).map((e) => e.phase);
  assert.deepEqual(phases, ["sample", "train-sample", "profile", "select", "train-lora-drop", "train-lora", "evaluate", "report"]);
  const dropSteps = events.filter((e) => e.phase === "train-lora-drop" && e.step !== undefined);
  assert.deepEqual(dropSteps.map((e) => e.loss), report.lora_drop.losses.map((l) => l.loss));
  assert.equal(events.filter((e) => e.phase === "train-sample" && e.step !== undefined).length, 3);
});

test("per-module selection, no comparison run, and refusals", async () => {
  const fx = fixture();
  const out = path.join(fx.root, "pm");
  const report = await runPipeline(options(fx, out, { perModule: true, compare: false, keep: 1, threshold: undefined, stratifyBy: undefined }));
  assert.equal(report.lora, null);
  assert.ok(!fs.existsSync(path.join(out, PIPELINE_FILES.lora_adapter)));
  const drop = loadAdapter(path.join(out, PIPELINE_FILES.adapter), loadHfModel(fx.modelDir).config);
  for (const m of ["q_proj", "v_proj"]) {
    const kept = (report.selection.kept as Record<string, number[]>)[m]!;
    assert.equal(kept.length, 1);
    const imp = report.importance.per_module[m]!;
    assert.equal(kept[0], imp.indexOf(Math.max(...imp)), `${m} keeps its most important layer`);
    assert.equal(drop.loras.filter((l) => l.module === m && l.param === `shared.${m}`).length, 3);
  }
  assert.ok(report.data.strata.every((s) => s.key.startsWith("length ")), "stratified by token length without a field");
  await assert.rejects(runPipeline(options(fx, out)), (e: unknown) => e instanceof LoraDropError && e.code === "OUTPUT_EXISTS");
  await assert.rejects(runPipeline(options(fx, path.join(fx.root, "x"), { stratifyBy: "colour" })), /line 1 has no field "colour"/);
  await assert.rejects(runPipeline(options(fx, path.join(fx.root, "x"), { sampleFraction: 0 })), /sample fraction/);
});

test("cancelling leaves no output folder behind", async () => {
  const fx = fixture();
  const out = path.join(fx.root, "cancelled");
  const ac = new AbortController();
  const onEvent = (e: PipelineEvent) => { if (e.phase === "train-lora-drop" && e.step === 1) ac.abort(); };
  await assert.rejects(runPipeline(options(fx, out), { signal: ac.signal, onEvent }), (e: unknown) => e instanceof LoraDropError && e.code === "CANCELLED");
  assert.ok(!fs.existsSync(out));
  assert.deepEqual(fs.readdirSync(fx.root).filter((f) => f.includes("cancelled")), [], "no temporary folder left");
});

test("the CLI runs the pipeline and prints the summary", () => {
  const fx = fixture();
  const out = path.join(fx.root, "cli");
  const bin = BIN;
  const o = options(fx, out);
  const r = spawnSync(process.execPath, [bin, "pipeline", "--model", fx.modelDir, "--data", fx.dataFile, "--out", out, "--sample-fraction", "0.25", "--threshold", "0.6",
    "--stratify-by", "label", "--r", "2", "--targets", "q_proj,v_proj", "--steps", String(o.steps), "--sample-steps", "2", "--lr", "0.05", "--batch-size", "4", "--device", "cpu", "--no-compare"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kept: [\d, ]+/);
  assert.match(r.stdout, /trainable LoRA parameters: full LoRA [\d,]+, LoRA-drop [\d,]+ \([\d.]+% fewer\)/);
  assert.match(r.stdout, /loss on the held-out split/);
  assert.match(r.stderr, /\[5\/8\] train-lora-drop/);
  const report = JSON.parse(fs.readFileSync(path.join(out, PIPELINE_FILES.report_json), "utf8")) as PipelineReport;
  assert.equal(report.settings.sample_steps, 2);
});
