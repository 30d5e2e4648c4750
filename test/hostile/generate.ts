/**
 * The seeded generator of the hostile corpus: from valid tiny fixtures (extension/core/demo/tinyModel.ts) it
 * writes a few hundred corrupted safetensors files, model folders, tokenizers, adapters, datasets and profiles into a folder,
 * and hostile runs (special files, outputs over inputs, bad options, damaged checkpoints, runaway training; see
 * generateStrict.ts and generateRuns.ts), each with the LoraDropError code the engine must answer. Nothing is written by hand case by case: every family
 * draws its variants (cut points, lengths, values, positions) from the seed, so another seed gives another corpus.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng } from "../../extension/core/util/random";
import { ErrorCode } from "../../extension/core/util/errors";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, TensorToWrite } from "../../extension/core/io/safetensors";
import { Bases, HostileCase, writeBases, cloneDir, CaseWriter } from "./corpus";
import { allMutations, randomMutation, pick, deepList, toJson } from "./stMutate";
import { adapterCases, datasetCases, profileCases } from "./generateInputs";
import { tokenizerCases } from "./generateTokenizer";
import { floatIntegerCases, profileConsistencyCases, recordCases, strictAdapterCases, strictConfigCases, tokenizerBudgetCases } from "./generateStrict";
import { checkpointCases, numericalCases, optionCases, outputCases, reliabilityBases, specialFileCases } from "./generateRuns";

/** The seed `npm test` uses (override with HOSTILE_SEED). */
export const DEFAULT_SEED = 20240207;

/** A generated corpus. */
export interface Corpus {
  root: string;
  seed: number;
  bases: Bases;
  cases: HostileCase[];
}

/** Writes the whole corpus under `root` and returns its cases. */
export async function generateCorpus(root: string, seed = DEFAULT_SEED): Promise<Corpus> {
  const bases = writeBases(path.join(root, "bases"), seed);
  const w = new CaseWriter(root, new Rng(seed), bases);
  safetensorsCases(w);
  modelCases(w);
  tokenizerCases(w);
  adapterCases(w);
  datasetCases(w);
  await profileCases(w);
  await reliabilityBases(w);
  strictConfigCases(w);
  strictAdapterCases(w);
  recordCases(w);
  floatIntegerCases(w);
  profileConsistencyCases(w);
  tokenizerBudgetCases(w);
  await specialFileCases(w);
  await outputCases(w);
  optionCases(w);
  checkpointCases(w);
  numericalCases(w);
  return { root, seed, bases, cases: w.cases };
}

/** Reads every tensor of a valid file back as F32 (to rebuild files with a tensor more or less). */
export function readAll(file: string): TensorToWrite[] {
  const idx = readSafetensorsIndex(file);
  return [...idx.tensors.keys()].map((name) => ({ name, dtype: "F32" as const, shape: idx.tensors.get(name)!.shape, data: readTensorF32(idx, name).data }));
}

function safetensorsCases(w: CaseWriter): void {
  const bases = [
    fs.readFileSync(path.join(w.bases.adapterDir, "adapter_model.safetensors")),
    fs.readFileSync(path.join(w.bases.bf16Model, "model.safetensors")),
  ];
  for (const m of allMutations(w.rng, pick(w.rng, bases))) {
    const { id, dir } = w.next(`st-${m.family}`);
    const file = path.join(dir, "weights.safetensors");
    fs.writeFileSync(file, m.bytes);
    w.add({ id, category: "safetensors", family: m.family, note: m.note, entry: "safetensors", file, expect: m.expect, names: file, ...(m.lowMemory ? { lowMemory: true } : {}) });
  }
  {
    const { id, dir } = w.next("st-not-a-file");
    const file = path.join(dir, "folder.safetensors");
    fs.mkdirSync(file);
    w.add({ id, category: "safetensors", family: "not-a-file", note: "a folder named .safetensors", entry: "safetensors", file, expect: "FILE_UNREADABLE", names: file });
  }
  {
    const { id, dir } = w.next("st-missing");
    const file = path.join(dir, "absent.safetensors");
    w.add({ id, category: "safetensors", family: "missing", note: "no such file", entry: "safetensors", file, expect: "FILE_NOT_FOUND", names: file });
  }
}

type Config = Record<string, unknown>;
const REQUIRED = ["hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size", "intermediate_size"] as const;

function modelCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const baseConfig = JSON.parse(fs.readFileSync(path.join(bases.modelDir, "config.json"), "utf8")) as Config;
  // A model folder whose config.json is `edit`ed (or replaced by `text`).
  const withConfig = (family: string, note: string, expect: ErrorCode, edit: (c: Config) => void | string, field = "config.json"): void => {
    const { id, dir } = w.next(`model-${family}`);
    cloneDir(bases.modelDir, dir);
    const c = structuredClone(baseConfig);
    const text = edit(c);
    fs.writeFileSync(path.join(dir, "config.json"), typeof text === "string" ? text : toJson(c));
    w.add({ id, category: "model", family, note, entry: "model", modelDir: dir, expect, names: path.join(dir, field) });
  };
  for (const key of REQUIRED) withConfig("missing-dim", `no ${key}`, "CONFIG_INVALID", (c) => { delete c[key]; });
  const absurd: unknown[] = [0, "-", "32", 16.5, 1e9, true, [16], {}, 2 ** 53, 1e300, null];
  for (let i = 0; i < 20; i++) {
    const key = pick(rng, [...REQUIRED, "num_key_value_heads", "head_dim"]);
    let v = absurd[rng.int(absurd.length)];
    if (v === "-") v = -(1 + rng.int(64));
    if (v === null && (key === "num_key_value_heads" || key === "head_dim")) v = 0; // null means "absent" for these
    withConfig("absurd-dim", `${key}: ${JSON.stringify(v)}`, "CONFIG_INVALID", (c) => { c[key] = v; });
  }
  for (let i = 0; i < 3; i++) {
    const h = 4 * (1 + rng.int(8)) + 1 + rng.int(3);
    withConfig("heads-not-dividing", `hidden_size ${h} with 4 heads`, "CONFIG_INVALID", (c) => { c.hidden_size = h; });
  }
  for (const kv of [3, 5, 7 + rng.int(100)]) withConfig("kv-heads", `num_key_value_heads ${kv} with 4 heads`, "CONFIG_INVALID", (c) => { c.num_key_value_heads = kv; });
  for (let i = 0; i < 2; i++) {
    const d = 2 * rng.int(64) + 1;
    withConfig("odd-head-dim", `head_dim ${d}`, "CONFIG_INVALID", (c) => { c.head_dim = d; });
  }
  const epsTheta: [string, unknown][] = [["rms_norm_eps", 0], ["rms_norm_eps", -1e-6], ["rms_norm_eps", 1], ["rms_norm_eps", "1e-6"], ["rope_theta", 1], ["rope_theta", "10000"], ["rope_theta", -5]];
  for (let i = 0; i < 4; i++) {
    const [k, v] = pick(rng, epsTheta);
    withConfig("eps-theta", `${k}: ${JSON.stringify(v)}`, "CONFIG_INVALID", (c) => { c[k] = v; });
  }
  withConfig("eps-theta", "rope_theta 1e999 (Infinity)", "CONFIG_INVALID", (c) => toJson({ ...c, rope_theta: 0 }).replace('"rope_theta":0', '"rope_theta":1e999'));
  const ropes: [unknown, ErrorCode][] = [[{ type: "linear", factor: -1 }, "CONFIG_INVALID"], [{ type: "linear", factor: "2" }, "CONFIG_INVALID"], ["linear", "CONFIG_INVALID"],
    [{ type: "yarn", factor: 2 }, "UNSUPPORTED_ARCHITECTURE"], [{ rope_type: "llama3", factor: 8, low_freq_factor: "x" }, "CONFIG_INVALID"], [[1, 2], "CONFIG_INVALID"]];
  for (const [v, code] of ropes) withConfig("rope-scaling", `rope_scaling ${JSON.stringify(v)}`, code, (c) => { c.rope_scaling = v; });
  const types: unknown[] = ["gpt2", "bert", "t5", "falcon", "LLAMA", "llama ", "", 7, null, ["llama"], undefined];
  for (let i = 0; i < 8; i++) {
    const letters = Array.from({ length: 3 + rng.int(8) }, () => String.fromCharCode(97 + rng.int(26))).join("");
    const v = i < 6 ? types[rng.int(types.length)] : ["llama", "mistral", "qwen2"].includes(letters) ? `${letters}x` : letters;
    withConfig("model-type", `model_type ${JSON.stringify(v)}`, "UNSUPPORTED_ARCHITECTURE", (c) => { if (v === undefined) delete c.model_type; else c.model_type = v; });
  }
  const text = toJson(baseConfig);
  const broken = [text.slice(0, 1 + rng.int(text.length - 2)), "", "[]", "null", "42", `\uFFFE${text.slice(1)}`, text.replace(":", "=")];
  for (const t of broken) withConfig("config-not-json", `config.json ${JSON.stringify(t.slice(0, 30))}`, "CONFIG_INVALID", () => t);
  withConfig("config-deep", "hidden_size nested 100000 deep", "CONFIG_INVALID", (c) => { c.hidden_size = deepList(100_000); });
  withConfig("layers-vs-weights", "num_hidden_layers one more than the weights hold", "TENSOR_MISSING", (c) => { c.num_hidden_layers = (c.num_hidden_layers as number) + 1; }, "");
  withConfig("layers-vs-weights", "num_hidden_layers one less than the weights hold", "CONFIG_INVALID", (c) => { c.num_hidden_layers = (c.num_hidden_layers as number) - 1; });
  {
    const { id, dir } = w.next("model-config-huge");
    cloneDir(bases.modelDir, dir);
    fs.truncateSync(path.join(dir, "config.json"), 100 * 1024 * 1024);
    w.add({ id, category: "model", family: "config-huge", note: "a 100 MB (sparse) config.json", entry: "model", modelDir: dir, expect: "CONFIG_INVALID", names: path.join(dir, "config.json"), lowMemory: true });
  }
  const folder = (family: string, note: string, expect: ErrorCode, make: (dir: string) => string): void => {
    const { id, dir } = w.next(`model-${family}`);
    const names = make(dir);
    w.add({ id, category: "model", family, note, entry: "model", modelDir: dir, expect, names });
  };
  folder("no-config", "no config.json", "FILE_NOT_FOUND", (d) => { cloneDir(bases.modelDir, d); fs.rmSync(path.join(d, "config.json")); return path.join(d, "config.json"); });
  folder("config-folder", "config.json is a folder", "FILE_UNREADABLE", (d) => { cloneDir(bases.modelDir, d); fs.rmSync(path.join(d, "config.json")); fs.mkdirSync(path.join(d, "config.json")); return path.join(d, "config.json"); });
  folder("no-weights", "no safetensors", "FILE_NOT_FOUND", (d) => { fs.copyFileSync(path.join(bases.modelDir, "config.json"), path.join(d, "config.json")); return d; });
  folder("missing", "the folder does not exist", "FILE_NOT_FOUND", (d) => { fs.rmdirSync(d); return d; });
  shardCases(w);
  const weights = fs.readFileSync(path.join(bases.modelDir, "model.safetensors"));
  for (let i = 0; i < 6; i++) {
    const m = randomMutation(rng, weights);
    const { id, dir } = w.next("model-corrupt-weights");
    cloneDir(bases.modelDir, dir);
    fs.rmSync(path.join(dir, "model.safetensors"));
    fs.writeFileSync(path.join(dir, "model.safetensors"), m.bytes);
    w.add({ id, category: "model", family: "corrupt-weights", note: `${m.family}: ${m.note}`, entry: "model", modelDir: dir, expect: m.expect, names: path.join(dir, "model.safetensors") });
  }
  // Configs that parse but disagree with the weights: found when the graph asks for the weights (the profile run).
  const run = (family: string, note: string, expect: ErrorCode, edit: (c: Config) => void, names: (dir: string) => string, weightsEdit?: (dir: string) => void): void => {
    const { id, dir } = w.next(`model-${family}`);
    cloneDir(bases.modelDir, dir);
    const c = structuredClone(baseConfig);
    edit(c);
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(c));
    weightsEdit?.(dir);
    w.add({ id, category: "model", family, note, entry: "run", criterion: "output", modelDir: dir, adapterDir: bases.adapterDir, dataFile: bases.idsData, expect, names: names(dir) });
  };
  const st = (d: string) => path.join(d, "model.safetensors");
  run("dims-vs-weights", "intermediate_size differs from the weights", "SAFETENSORS_SHAPE_MISMATCH", (c) => { c.intermediate_size = (c.intermediate_size as number) + 2 * (1 + rng.int(8)); }, st);
  run("dims-vs-weights", "vocab_size differs from the weights", "SAFETENSORS_SHAPE_MISMATCH", (c) => { c.vocab_size = (c.vocab_size as number) + 1 + rng.int(100); }, st);
  run("dims-vs-weights", "hidden_size differs from the weights and the adapter", "ADAPTER_SHAPE_MISMATCH", (c) => { c.hidden_size = 32; }, () => path.join(bases.adapterDir, "adapter_model.safetensors"));
  run("missing-tensor", "a layer norm weight is missing", "TENSOR_MISSING", () => {}, (d) => d, (d) => {
    const kept = readAll(st(d)).filter((t) => t.name !== "model.layers.0.input_layernorm.weight");
    fs.rmSync(st(d));
    fs.writeFileSync(st(d), encodeSafetensors(kept));
  });
}

function shardCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const indexName = "model.safetensors.index.json";
  const base = JSON.parse(fs.readFileSync(path.join(bases.shardedDir, indexName), "utf8")) as { weight_map: Record<string, string> };
  const names = Object.keys(base.weight_map);
  const shardFiles = [...new Set(Object.values(base.weight_map))].sort();
  const withIndex = (family: string, note: string, expect: ErrorCode, edit: (map: Record<string, unknown>) => unknown, named?: (dir: string) => string): void => {
    const { id, dir } = w.next(`model-${family}`);
    cloneDir(bases.shardedDir, dir);
    const map: Record<string, unknown> = { ...base.weight_map };
    const idx = edit(map);
    fs.writeFileSync(path.join(dir, indexName), typeof idx === "string" ? idx : JSON.stringify(idx ?? { metadata: {}, weight_map: map }));
    w.add({ id, category: "model", family, note, entry: "model", modelDir: dir, expect, names: named ? named(dir) : path.join(dir, indexName) });
  };
  for (const v of [null, [], "x", {}]) withIndex("weight-map", `weight_map ${JSON.stringify(v)}`, "CONFIG_INVALID", () => ({ weight_map: v }));
  for (let i = 0; i < 2; i++) {
    const v = pick(rng, [42, null, {}, ["a"], true]);
    const n = pick(rng, names);
    withIndex("weight-map", `${n} → ${JSON.stringify(v)}`, "CONFIG_INVALID", (m) => { m[n] = v; });
  }
  for (const bad of [`../${shardFiles[0]}`, "/etc/passwd", `sub/${shardFiles[0]}`, ".hidden.safetensors", ""]) {
    const n = pick(rng, names);
    withIndex("weight-map", `${n} → ${JSON.stringify(bad)}`, "CONFIG_INVALID", (m) => { m[n] = bad; });
  }
  {
    const n = pick(rng, names);
    const missing = "model-00003-of-00002.safetensors";
    withIndex("missing-shard", `${n} → ${missing}`, "FILE_NOT_FOUND", (m) => { m[n] = missing; }, (d) => path.join(d, missing));
  }
  {
    const n = pick(rng, names);
    withIndex("wrong-shard", `${n} placed in the other shard`, "TENSOR_MISSING", (m) => { m[n] = shardFiles.find((f) => f !== base.weight_map[n]); });
  }
  withIndex("index-not-json", "truncated index", "CONFIG_INVALID", () => JSON.stringify(base).slice(0, 20));
  withIndex("index-not-json", "index is a list", "CONFIG_INVALID", () => "[]");
  {
    const { id, dir } = w.next("model-duplicate-across-shards");
    cloneDir(bases.shardedDir, dir);
    const [a, b] = shardFiles.map((f) => path.join(dir, f)) as [string, string];
    const extra = pick(rng, readAll(a));
    const merged = [...readAll(b), extra];
    fs.rmSync(b);
    fs.writeFileSync(b, encodeSafetensors(merged));
    // Shards are read in name order, so the second one is where the repeat shows.
    w.add({ id, category: "model", family: "duplicate-across-shards", note: `${extra.name} in both shards`, entry: "model", modelDir: dir, expect: "SAFETENSORS_DUPLICATE", names: b });
  }
}
