/**
 * The real PEFT 0.14 (with transformers 4.44, from ../shared/pyenv) loads every PEFT form of a pruned adapter of
 * every architecture (llama, qwen2, gpt2, roberta) and computes what the engine computes. The PEFT forms are the
 * `--format peft` outputs: share and drop, per layer and per module; `--format compact` stores the shared LoRA once,
 * under keys only this engine reads, and is not one. For each: no warning while loading (PEFT warns about unknown
 * adapter_config.json keys, which PEFT 0.13 and older refuse outright), every adapter_config.json key a LoraConfig
 * field, no tensor PEFT ignores and none it misses, and logits equal to the engine's within 1e-4 of their scale.
 * Mistral's sliding window is checked the same way on the base model, with sequences longer than the window.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { writeTinyModel, writeTinyAdapter } from "../../../extension/core/demo/tinyModel";
import { writeTinyArchModel, writeTinyArchAdapter } from "../../fixtures/tinyArch";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { REPO_ROOT, tmpDir } from "../../helpers";
import { torchEnvOrSkip } from "../../torchEnv";

const ARCHS = ["llama", "qwen2", "gpt2", "roberta"] as const;
/** The prune forms PEFT loads, by name: options of pruneAdapter (all `--format peft`). */
const PEFT_FORMS = {
  "share": { mode: "share", perModule: false },
  "share-per-module": { mode: "share", perModule: true },
  "drop": { mode: "drop", perModule: false },
  "drop-per-module": { mode: "drop", perModule: true },
} as const;
const VOCAB = 96;
const IDS = [[5, 17, 33, 8, 61, 42, 9, 27], [12, 4, 77, 3, 50, 19, 88, 6]];

interface Case { id: string; model_dir: string; adapter_dir: string | null; head: "causal-lm" | "seq-cls"; input_ids: number[][]; engine: number[] }
interface Report { versions: Record<string, string>; cases: { id: string; error?: string; warnings: string[]; unknown_config_keys: string[]; unexpected_keys: string[]; missing_keys: string[]; logits?: unknown }[] }

/** A tiny model of `arch` and a LoRA on three modules of each layer (roberta: two, plus a saved classifier head). */
function fixture(root: string, arch: (typeof ARCHS)[number]) {
  const modelDir = path.join(root, arch, "model");
  const adapterDir = path.join(root, arch, "adapter");
  if (arch === "llama" || arch === "qwen2") {
    const cfg = writeTinyModel(modelDir, { architecture: arch, tokenizer: false, numLayers: 4, hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 48, vocabSize: VOCAB, seed: 3 });
    writeTinyAdapter(adapterDir, cfg, { seed: 4, r: 4, targets: ["q_proj", "v_proj", "down_proj"] });
  } else {
    const cfg = writeTinyArchModel(modelDir, { architecture: arch, numLayers: 4, hiddenSize: 32, vocabSize: VOCAB, seed: 5 });
    writeTinyArchAdapter(adapterDir, cfg, { seed: 6, r: 4, targets: arch === "gpt2" ? ["c_attn", "c_fc", "mlp.c_proj"] : ["query", "value"], head: arch === "roberta" });
  }
  // As PEFT saves it: the base model's path, where PEFT looks for its config (to see whether embeddings were resized).
  const cfgFile = path.join(adapterDir, "adapter_config.json");
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), base_model_name_or_path: modelDir }));
  const data = path.join(root, arch, "ids.jsonl");
  fs.writeFileSync(data, IDS.map((ids) => JSON.stringify({ input_ids: ids, label: ids[0]! % 2 })).join("\n") + "\n");
  return { modelDir, adapterDir, data };
}

/** The engine's logits for IDS with the adapter in `adapterDir` (none: the base model), flattened as PyTorch's. */
async function engineLogits(modelDir: string, adapterDir: string | undefined): Promise<number[]> {
  const base = loadHfModel(modelDir);
  const adapter = adapterDir ? loadAdapter(adapterDir, base.config) : undefined;
  const model = adapter && base.config.head === "seq-cls" ? withAdapterHead(base, adapter) : base;
  const runner = await LoraForwardRunner.create(model, adapter?.loras ?? [], { logits: true, loraNorms: false, device: "cpu", threads: 1 });
  try {
    const examples = IDS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i }));
    return [...(await runner.run(makeBatch(examples), adapter?.loras ?? [])).logits!];
  } finally {
    await runner.dispose();
  }
}

function flatten(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flatten) : [x as number];
}

test("PEFT 0.14 loads every PEFT prune form of every architecture, warning-free, with the engine's logits", { timeout: 600_000 }, async (t) => {
  const { env: py, skip } = torchEnvOrSkip();
  if (!py) {
    t.skip(skip);
    return;
  }

  const root = tmpDir("lora-drop-peft-");
  const cases: Case[] = [];
  const add = async (id: string, modelDir: string, adapterDir: string | null) => {
    const head = loadHfModel(modelDir).config.head === "seq-cls" ? "seq-cls" : "causal-lm";
    cases.push({ id, model_dir: modelDir, adapter_dir: adapterDir, head, input_ids: IDS, engine: await engineLogits(modelDir, adapterDir ?? undefined) });
  };
  for (const arch of ARCHS) {
    const fx = fixture(root, arch);
    const profile = path.join(root, arch, "profile.json");
    writeProfile(profile, await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.data, device: "cpu", threads: 1 }));
    await add(`${arch}/source`, fx.modelDir, fx.adapterDir);
    for (const [form, o] of Object.entries(PEFT_FORMS)) {
      const out = path.join(root, arch, form);
      const r = await pruneAdapter({ adapterDir: fx.adapterDir, profile, outDir: out, keep: 2, mode: o.mode, perModule: o.perModule, format: "peft" });
      assert.ok(r.paramsAfter < r.paramsBefore, `${arch} ${form} prunes something`);
      await add(`${arch}/${form}`, fx.modelDir, out);
    }
  }
  // Mistral's sliding window (3) is shorter than the sequences (8): the graph must mask as transformers does.
  const mistral = path.join(root, "mistral");
  writeTinyModel(mistral, { architecture: "mistral", tokenizer: false, numLayers: 2, hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 48, vocabSize: VOCAB, seed: 8 });
  const cfgFile = path.join(mistral, "config.json");
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), sliding_window: 3 }));
  await add("mistral/sliding-window-3", mistral, null);

  const manifest = path.join(root, "manifest.json");
  const reportFile = path.join(root, "report.json");
  fs.writeFileSync(manifest, JSON.stringify({ cases: cases.map(({ engine: _e, ...c }) => c) }));
  const started = Date.now();
  const run = spawnSync(py.python, [path.join(REPO_ROOT, "test", "python", "peft_load.py"), manifest, reportFile], { env: { ...process.env, ...py.env }, encoding: "utf8", timeout: 540_000 });
  assert.equal(run.status, 0, `peft_load.py failed: ${run.stderr.slice(-3000)}`);
  const report = JSON.parse(fs.readFileSync(reportFile, "utf8")) as Report;
  t.diagnostic(`PyTorch side (${Object.entries(report.versions).map(([k, v]) => `${k} ${v}`).join(", ")}): ${cases.length} loads in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(report.versions.peft, "0.14.0");

  const problems: string[] = [];
  let worst = 0;
  for (const c of cases) {
    const r = report.cases.find((x) => x.id === c.id)!;
    if (r.error) { problems.push(`${c.id}: ${r.error}`); continue; }
    for (const [what, list] of [["warnings", r.warnings], ["unknown adapter_config.json keys", r.unknown_config_keys], ["tensors PEFT ignores", r.unexpected_keys], ["LoRA tensors missing", r.missing_keys]] as const) {
      if (list.length) problems.push(`${c.id}: ${what}: ${list.join(" | ").slice(0, 400)}`);
    }
    const got = flatten(r.logits);
    if (got.length !== c.engine.length) { problems.push(`${c.id}: ${got.length} logits from PyTorch, ${c.engine.length} from the engine`); continue; }
    const scale = c.engine.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const diff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - c.engine[i]!)), 0);
    worst = Math.max(worst, diff / scale);
    if (!(diff <= 1e-4 * scale)) problems.push(`${c.id}: logits differ by ${diff.toExponential(2)} (scale ${scale.toFixed(3)})`);
  }
  t.diagnostic(`largest logit difference: ${worst.toExponential(2)} of the scale`);
  assert.deepEqual(problems, []);
  // The forms are not the source under another name: dropping layers changes what the model computes.
  for (const arch of ARCHS) {
    const src = cases.find((c) => c.id === `${arch}/source`)!.engine;
    const drop = cases.find((c) => c.id === `${arch}/drop`)!.engine;
    assert.ok(src.some((v, i) => Math.abs(v - drop[i]!) > 1e-3), `${arch}: drop gives the source's logits`);
  }
  // Nor is the window a no-op: the same model without it computes other logits for the later tokens.
  const windowed = cases.find((c) => c.id === "mistral/sliding-window-3")!.engine;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), sliding_window: null }));
  const full = await engineLogits(mistral, undefined);
  assert.ok(windowed.some((v, i) => Math.abs(v - full[i]!) > 1e-3), "the sliding window changes nothing");
});
