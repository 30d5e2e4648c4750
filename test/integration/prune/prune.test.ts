/**
 * `lora-drop prune` end to end on fixtures: the kept set matches a hand computation from the profile, a share
 * adapter computes what the engine computes with the shared pair placed by hand (and what the plain-loop reference
 * computes), a drop adapter loads through layers_to_transform / a target_modules regex, the compact and peft forms
 * load to the same values, and the source adapter is never touched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { meanLowRank } from "../../../extension/core/prune/lowRank";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter, isTargeted, peftKey } from "../../../extension/core/adapter/peftAdapter";
import { compactSharedKey } from "../../../extension/core/adapter/dropRecord";
import { readSafetensorsIndex, encodeSafetensors, readTensorF32 } from "../../../extension/core/io/safetensors";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { LoraDropError } from "../../../extension/core/util/errors";
import { referenceForward } from "../../reference/llamaReference";
import { makeFixture, maxRelErr, BIN } from "../../helpers";
import { LoraModule, countLoraParams, ownParam } from "../../../extension/core/adapter/loraModule";

const SEQS = [[1, 45, 66, 29, 33, 26], [1, 31, 181, 7]];

function examples(): TokenizedExample[] {
  return SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i }));
}

/** SHA-256 of every file in a folder, by name. */
function hashDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) out[f] = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex");
  return out;
}

/** The kept layers by hand: sort by importance, add layers until the running sum reaches T. */
function handKept(importance: number[], T: number): number[] {
  const order = importance.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const kept: number[] = [];
  let sum = 0;
  for (const [v, i] of order) {
    if (kept.length && sum >= T) break;
    kept.push(i);
    sum += v;
  }
  return kept.sort((a, b) => a - b);
}

/** A fixture (6 layers, q/v/down LoRA, no tokenizer) with its profile written. */
async function profiled() {
  const fx = makeFixture({ numLayers: 6, tokenizer: false }, { targets: ["q_proj", "v_proj", "down_proj"] }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, SEQS.map((ids) => JSON.stringify({ input_ids: ids })).join("\n"));
  const profile = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu" });
  const profileFile = path.join(fx.root, "profile.json");
  writeProfile(profileFile, profile);
  const model = loadHfModel(fx.modelDir);
  return { fx, profile, profileFile, model, source: loadAdapter(fx.adapterDir, model.config) };
}

async function forward(model: ReturnType<typeof loadHfModel>, loras: LoraModule[]) {
  const runner = await LoraForwardRunner.create(model, loras, { logits: true, loraNorms: true, device: "cpu" });
  try {
    const out = await runner.run(makeBatch(examples()), loras);
    return { ...out, inputs: runner.graph.loraInputs.length, taps: runner.graph.tapOrder };
  } finally {
    await runner.dispose();
  }
}

test("share (peft form): hand-computed selection, shared binding, outputs equal the hand-placed shared pair", async () => {
  const { fx, profile, profileFile, model, source } = await profiled();
  const before = hashDir(fx.adapterDir);
  const out = path.join(fx.root, "pruned");
  const res = await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out, threshold: 0.9 });
  assert.deepEqual(hashDir(fx.adapterDir), before, "the source adapter is unchanged");
  const kept = handKept(profile.importance.per_layer, 0.9);
  const shared = [0, 1, 2, 3, 4, 5].filter((l) => !kept.includes(l));
  assert.ok(shared.length > 0 && kept.length > 0, "the fixture's uneven scales make both sets non-empty");
  assert.deepEqual(res.record.kept_layers, kept);
  assert.deepEqual(res.record.shared_layers, shared);

  const pruned = loadAdapter(out, model.config);
  assert.deepEqual(pruned.loraDrop?.kept_layers, kept);
  // adapter_config.json keeps to PEFT's fields; the record is in lora_drop.json and the safetensors metadata.
  const cfg = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
  assert.equal(cfg.lora_drop, undefined);
  const sidecar = JSON.parse(fs.readFileSync(path.join(out, "lora_drop.json"), "utf8"));
  assert.equal(sidecar.mode, "share");
  assert.equal(sidecar.source_adapter, path.resolve(fx.adapterDir));
  assert.deepEqual(sidecar.kept_layers, kept);
  const meta = readSafetensorsIndex(path.join(out, "adapter_model.safetensors")).metadata;
  assert.equal(meta["lora_drop.kept_layers"], JSON.stringify(kept));
  assert.equal(JSON.parse(meta["lora_drop.importance"]!).length, 6);
  // PEFT form: every shared layer carries the pair under its own key.
  for (const l of shared) assert.ok(readSafetensorsIndex(path.join(out, "adapter_model.safetensors")).tensors.has(peftKey(l, "q_proj", "A")));

  const pairSize = (l: LoraModule) => l.r * (l.inFeatures + l.outFeatures);
  const expectedAfter = source.loras.filter((l) => kept.includes(l.layer)).reduce((a, l) => a + pairSize(l), 0)
    + source.modules.reduce((a, m) => a + pairSize(source.loras.find((l) => l.module === m)!), 0);
  assert.equal(res.paramsBefore, countLoraParams(source.loras));
  assert.equal(res.paramsAfter, expectedAfter);
  assert.equal(countLoraParams(pruned.loras), expectedAfter);

  // By hand: the source's kept pairs, and on every shared layer its own copy of the mean low-rank pair.
  const manual = source.loras.map((l) => {
    if (kept.includes(l.layer)) return l;
    const group = source.loras.filter((g) => g.module === l.module && shared.includes(g.layer));
    const low = meanLowRank(group, l.r, l.scale);
    return { ...l, A: Float32Array.from(low.A), B: Float32Array.from(low.B), param: ownParam(l.layer, l.module) };
  });
  const a = await forward(model, pruned.loras);
  const b = await forward(model, manual);
  assert.equal(a.inputs, kept.length * 3 + 3, "one graph input per kept pair plus one per shared module");
  assert.equal(b.inputs, 18);
  assert.ok(maxRelErr(a.logits!, b.logits!).err < 1e-5);
  assert.ok(maxRelErr(a.loraNorms!, b.loraNorms!).err < 1e-5);
  // And against the plain-loop float64 reference with the hand-placed pairs.
  const batch = makeBatch(examples());
  const V = model.config.vocabSize;
  SEQS.forEach((ids, s) => {
    const ref = referenceForward(model, manual, ids);
    const got = a.logits!.subarray(s * batch.seq * V, (s * batch.seq + ids.length) * V);
    const scale = ref.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxRelErr(got, ref.logits, scale).err < 1e-4, `logits of sequence ${s}`);
  });
});

test("compact and peft forms load to the same LoRA values; the compact file stores the shared pair once", async () => {
  const { fx, profileFile, model } = await profiled();
  const peft = path.join(fx.root, "peft");
  const compact = path.join(fx.root, "compact");
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: peft, keep: 2 });
  const res = await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: compact, keep: 2, format: "compact" });
  const p = loadAdapter(peft, model.config);
  const c = loadAdapter(compact, model.config);
  assert.equal(c.loras.length, p.loras.length);
  p.loras.forEach((l, i) => {
    const o = c.loras[i]!;
    assert.deepEqual([o.layer, o.module, o.param, o.r, o.scale], [l.layer, l.module, l.param, l.r, l.scale]);
    assert.deepEqual(o.A, l.A);
    assert.deepEqual(o.B, l.B);
  });
  const index = readSafetensorsIndex(path.join(compact, "adapter_model.safetensors"));
  const shared = res.record.shared_layers as number[];
  assert.equal(shared.length, 4);
  assert.ok(index.tensors.has(compactSharedKey("v_proj", "B")));
  assert.ok(!index.tensors.has(peftKey(shared[0]!, "v_proj", "B")));
  assert.equal(index.tensors.size, 2 * 3 * 2 + 2 * 3, "two kept layers × three modules, plus one shared pair per module");
  assert.ok(fs.statSync(path.join(compact, "adapter_model.safetensors")).size < fs.statSync(path.join(peft, "adapter_model.safetensors")).size);
});

test("drop: per-layer output loads through layers_to_transform and computes the kept layers only", async () => {
  const { fx, profile, profileFile, model, source } = await profiled();
  const out = path.join(fx.root, "dropped");
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out, threshold: 0.8, mode: "drop" });
  const kept = handKept(profile.importance.per_layer, 0.8);
  const d = loadAdapter(out, model.config);
  assert.deepEqual(d.config.layersToTransform, kept);
  assert.deepEqual([...new Set(d.loras.map((l) => l.layer))], kept);
  for (const l of [0, 1, 2, 3, 4, 5]) assert.equal(isTargeted(d.config, l, "q_proj"), kept.includes(l));
  const a = await forward(model, d.loras);
  const b = await forward(model, source.loras.filter((l) => kept.includes(l.layer)));
  assert.ok(maxRelErr(a.logits!, b.logits!).err < 1e-6);
  // A weight for a dropped layer is refused by the loader, since the config no longer targets that layer.
  const dropped = [0, 1, 2, 3, 4, 5].find((l) => !kept.includes(l))!;
  const idx = readSafetensorsIndex(path.join(out, "adapter_model.safetensors"));
  const tensors = [...idx.tensors.keys()].map((name) => ({ name, dtype: "F32" as const, shape: idx.tensors.get(name)!.shape, data: readTensorF32(idx, name).data }));
  const src = readSafetensorsIndex(path.join(fx.adapterDir, "adapter_model.safetensors"));
  for (const w of ["A", "B"] as const) tensors.push({ name: peftKey(dropped, "q_proj", w), dtype: "F32", shape: src.tensors.get(peftKey(dropped, "q_proj", w))!.shape, data: readTensorF32(src, peftKey(dropped, "q_proj", w)).data });
  fs.writeFileSync(path.join(out, "adapter_model.safetensors"), encodeSafetensors(tensors));
  // The record (lora_drop.json) says the layer was dropped: the weight contradicts it.
  assert.throws(() => loadAdapter(out, model.config), (e: unknown) => e instanceof LoraDropError && e.code === "ADAPTER_INVALID"
    && e.file === path.join(out, "lora_drop.json") && new RegExp(`is "drop" but the shared \\(dropped\\) layer ${dropped} still carries a q_proj LoRA`).test(e.message));
  // Without the record, the config's layers_to_transform no longer targets it.
  fs.rmSync(path.join(out, "lora_drop.json"));
  assert.throws(() => loadAdapter(out, model.config), /does not target it/);
});

test("drop per module: the target_modules regex keeps each module's own layers", async () => {
  const { fx, profile, profileFile, model } = await profiled();
  const out = path.join(fx.root, "dropped-pm");
  const res = await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out, threshold: 0.7, mode: "drop", perModule: true });
  const d = loadAdapter(out, model.config);
  assert.equal(typeof d.config.targetModules, "string");
  assert.equal(d.config.layersToTransform, undefined);
  for (const m of ["q_proj", "v_proj", "down_proj"]) {
    const kept = handKept(profile.importance.per_module[m]!, 0.7);
    assert.deepEqual((res.record.kept_layers as Record<string, number[]>)[m], kept, m);
    assert.deepEqual(d.loras.filter((l) => l.module === m).map((l) => l.layer), kept, m);
  }
});

test("share per module binds each module's own shared set", async () => {
  const { fx, profile, profileFile, model } = await profiled();
  const out = path.join(fx.root, "shared-pm");
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out, threshold: 0.7, perModule: true, format: "compact" });
  const d = loadAdapter(out, model.config);
  for (const m of ["q_proj", "v_proj", "down_proj"]) {
    const kept = handKept(profile.importance.per_module[m]!, 0.7);
    for (const l of d.loras.filter((x) => x.module === m)) assert.equal(l.param, kept.includes(l.layer) ? ownParam(l.layer, m) : `shared.${m}`);
  }
});

test("refusals: existing output without --force, the source as output, edited shared copies, a foreign profile", async () => {
  const { fx, profileFile, model } = await profiled();
  const out = path.join(fx.root, "o");
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out });
  await assert.rejects(pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out }), (e: unknown) => e instanceof LoraDropError && e.code === "OUTPUT_EXISTS");
  await pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: out, force: true, keep: 1 });
  assert.equal((loadAdapter(out, model.config).loraDrop!.kept_layers as number[]).length, 1, "--force replaced it");
  await assert.rejects(pruneAdapter({ adapterDir: fx.adapterDir, profile: profileFile, outDir: fx.adapterDir, force: true }),
    (e: unknown) => e instanceof LoraDropError && e.code === "OUTPUT_IS_INPUT" && e.file === fx.adapterDir && /is the source adapter --adapter/.test(e.message));

  // Edit one shared copy in the peft form: the loader refuses to guess which copy is the shared LoRA.
  const rec = loadAdapter(out, model.config).loraDrop!;
  const [s0] = rec.shared_layers as number[];
  const file = path.join(out, "adapter_model.safetensors");
  const idx = readSafetensorsIndex(file);
  const tensors = [...idx.tensors.keys()].map((name) => {
    const data = readTensorF32(idx, name).data;
    if (name === peftKey(s0!, "v_proj", "B")) data[0] = data[0]! + 1;
    return { name, dtype: "F32" as const, shape: idx.tensors.get(name)!.shape, data };
  });
  fs.writeFileSync(file, encodeSafetensors(tensors, idx.metadata));
  assert.throws(() => loadAdapter(out, model.config), /v_proj LoRA of layer \d+ differs/);

  const other = makeFixture({ numLayers: 6, tokenizer: false }, { r: 2, targets: ["q_proj", "v_proj", "down_proj"] }, { count: 1 });
  await assert.rejects(pruneAdapter({ adapterDir: other.adapterDir, profile: profileFile, outDir: path.join(fx.root, "x"), modelDir: fx.modelDir }), /profile was made for a different adapter/);
});

test("the CLI prints kept/shared, the parameter reduction and the verification", async () => {
  const { fx, profileFile } = await profiled();
  const out = path.join(fx.root, "cli-out");
  const bin = BIN;
  const r = spawnSync(process.execPath, [bin, "prune", "--adapter", fx.adapterDir, "--profile", profileFile, "--out", out, "--threshold", "0.9"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kept: [\d, ]+; shared: [\d, ]+/);
  assert.match(r.stdout, /trainable LoRA parameters: [\d,]+ → [\d,]+ \([\d.]+% fewer\)/);
  assert.match(r.stdout, /verified/);
  const bad = spawnSync(process.execPath, [bin, "prune", "--adapter", fx.adapterDir, "--profile", profileFile, "--out", out, "--threshold", "1.5"], { encoding: "utf8" });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /threshold/);
});
