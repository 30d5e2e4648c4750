/**
 * Hostile adapters, datasets and profiles for the corpus (see generate.ts). Each family mutates a valid base
 * (the tiny fixtures) with values, positions and sizes drawn from the seed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorCode } from "../../extension/core/util/errors";
import { profileAdapter } from "../../extension/core/importance/profile";
import { writeProfile } from "../../extension/core/importance/profileFile";
import { writeTinyAdapter } from "../../extension/core/demo/tinyModel";
import { parseModelConfig } from "../../extension/core/models/hfModel";
import { HostileCase, cloneDir, CaseWriter, poke } from "./corpus";
import { randomMutation, pick, deepList, toJson, splitSafetensors, joinSafetensors, tensorsOf, invalidUtf8, StParts, RawJson } from "./stMutate";

type Json = Record<string, unknown>;

/** Draws `n` distinct elements. */
function sample<T>(w: CaseWriter, a: readonly T[], n: number): T[] {
  return w.rng.shuffle([...a]).slice(0, n);
}

/** Adds a zero-filled F32 tensor to safetensors parts. */
function addTensor(p: StParts, name: string, shape: number[]): void {
  const bytes = 4 * shape.reduce((a, b) => a * b, 1);
  p.entries.push([name, { dtype: "F32", shape, data_offsets: [p.data.length, p.data.length + bytes] }]);
  p.data = Buffer.concat([p.data, Buffer.alloc(bytes)]);
}

/** Renames tensors (keys only: offsets and data stay valid). */
function rename(p: StParts, f: (name: string) => string): void {
  p.entries = p.entries.map(([k, v]) => [typeof k === "string" && k !== "__metadata__" ? f(k) : k, v]);
}

/** Adapters whose config, keys, ranks, shapes, dtypes or values do not fit the model (or are broken outright). */
export function adapterCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const configFile = "adapter_config.json";
  const weightsFile = "adapter_model.safetensors";
  const baseConfig = JSON.parse(fs.readFileSync(path.join(bases.adapterDir, configFile), "utf8")) as Json;
  const baseWeights = fs.readFileSync(path.join(bases.adapterDir, weightsFile));
  interface Spec { config?: (c: Json) => void | string; weights?: (p: StParts) => void; bytes?: Buffer; names: "config" | "weights" | "dir" | string; run?: "output" | "weight"; modelDir?: string; category?: "model" }
  const make = (family: string, note: string, expect: ErrorCode, s: Spec): void => {
    const { id, dir } = w.next(`adapter-${family}`);
    cloneDir(bases.adapterDir, dir);
    if (s.config) {
      const c = structuredClone(baseConfig);
      const text = s.config(c);
      fs.writeFileSync(path.join(dir, configFile), typeof text === "string" ? text : toJson(c));
    }
    if (s.weights || s.bytes) {
      let bytes = s.bytes;
      if (s.weights) {
        const p = splitSafetensors(baseWeights);
        s.weights(p);
        bytes = joinSafetensors(p);
      }
      fs.rmSync(path.join(dir, weightsFile)); // a hard link to the base: never write through it
      fs.writeFileSync(path.join(dir, weightsFile), bytes!);
    }
    const names = s.names === "config" ? path.join(dir, configFile) : s.names === "weights" ? path.join(dir, weightsFile) : s.names === "dir" ? dir : s.names;
    const c: HostileCase = { id, category: s.category ?? "adapter", family, note, entry: s.run ? "run" : "adapter", modelDir: s.modelDir ?? bases.modelDir, adapterDir: dir, expect, names };
    if (s.run) Object.assign(c, { criterion: s.run, dataFile: bases.idsData });
    w.add(c);
  };

  const fieldValues: [string, unknown][] = [
    ["r", 0], ["r", -4], ["r", 1.5], ["r", "4"], ["r", null], ["r", 1e9], ["r", true],
    ["lora_alpha", "16"], ["lora_alpha", []], ["lora_alpha", {}], ["lora_alpha", true],
    ["target_modules", 42], ["target_modules", [1]], ["target_modules", {}], ["target_modules", null],
    ["peft_type", "PREFIX_TUNING"], ["peft_type", "lora"], ["peft_type", 3], ["bias", "all"], ["bias", "lora_only"], ["bias", 1],
    ["layers_to_transform", "0"], ["layers_to_transform", ["a"]], ["layers_to_transform", [-1]], ["layers_to_transform", [0.5]], ["layers_to_transform", {}],
    ["rank_pattern", { q_proj: "4" }], ["rank_pattern", { q_proj: 0 }], ["rank_pattern", { q_proj: -2 }], ["rank_pattern", { q_proj: 2.5 }], ["rank_pattern", []], ["rank_pattern", "x"],
    ["alpha_pattern", { q_proj: "x" }], ["alpha_pattern", "x"], ["alpha_pattern", []], ["use_dora", true],
  ];
  for (const [k, v] of sample(w, fieldValues, 24)) make("config-field", `${k}: ${JSON.stringify(v)}`, "ADAPTER_INVALID", { config: (c) => { c[k] = v; }, names: "config" });
  make("config-field", "r nested 100000 deep", "ADAPTER_INVALID", { config: (c) => { c.r = deepList(100_000); }, names: "config" });
  for (const re of sample(w, ["(", "[q_proj", "*q", "q_proj)", "(?<n", "\\"], 4)) make("invalid-regex", `target_modules ${JSON.stringify(re)}`, "ADAPTER_INVALID", { config: (c) => { c.target_modules = re; }, names: "config" });
  make("invalid-regex", "rank_pattern key \"(\"", "ADAPTER_INVALID", { config: (c) => { c.rank_pattern = { "(": 4 }; }, names: "config" });
  make("invalid-regex", "alpha_pattern key \"q_proj[\"", "ADAPTER_INVALID", { config: (c) => { c.alpha_pattern = { "q_proj[": 4 }; }, names: "config" });
  // Patterns with catastrophic backtracking: without a time limit each would hang the process for minutes.
  for (const [k, re] of [["target_modules", "(.*)*x"], ["target_modules", "([a-z.0-9_]+)+X"], ["rank_pattern", "(.+)+Z"]] as const) {
    make("redos-regex", `${k} ${JSON.stringify(re)}`, "ADAPTER_INVALID", { config: (c) => { if (k === "rank_pattern") c.rank_pattern = { [re]: 4 }; else c.target_modules = re; }, names: "config" });
  }
  const targets: unknown[] = [["k_proj"], ["o_proj", "up_proj"], ["q_proj"]];
  for (const t of targets) make("targets-mismatch", `target_modules ${JSON.stringify(t)} but weights on q_proj and v_proj`, "ADAPTER_INVALID", { config: (c) => { c.target_modules = t; }, names: "config" });
  make("targets-mismatch", "layers_to_transform [] with weights present", "ADAPTER_INVALID", { config: (c) => { c.layers_to_transform = []; }, names: "config" });
  for (const r of [4 + 1 + rng.int(4), 1 + rng.int(3)]) make("rank-mismatch", `r ${r} but weights of rank 4`, "ADAPTER_SHAPE_MISMATCH", { config: (c) => { c.r = r; }, names: "weights" });
  make("rank-mismatch", "rank_pattern v_proj 8 but weights of rank 4", "ADAPTER_SHAPE_MISMATCH", { config: (c) => { c.rank_pattern = { v_proj: 8 }; }, names: "weights" });
  const L = bases.config.numLayers;
  for (const to of [String(L + rng.int(1000)), "1234567890123456789012345"]) {
    const from = String(rng.int(L));
    make("layer-out-of-range", `layer ${from} renamed ${to}`, "ADAPTER_SHAPE_MISMATCH", { weights: (p) => rename(p, (k) => k.replace(`.layers.${from}.`, `.layers.${to}.`)), names: "weights" });
  }
  for (const to of ["self_attn.fc1", "mlp.q_proj", "self_attn.gate_proj"]) {
    const m = pick(rng, ["self_attn.q_proj", "self_attn.v_proj"]);
    make("unknown-module", `${m} renamed ${to}`, "ADAPTER_SHAPE_MISMATCH", { weights: (p) => rename(p, (k) => k.replace(`.${m}.`, `.${to}.`)), names: "weights" });
  }
  for (let i = 0; i < 3; i++) {
    const half = pick(rng, ["lora_A", "lora_B"]);
    make("missing-half", `one ${half} removed`, "ADAPTER_INVALID", { weights: (p) => {
      const t = pick(rng, tensorsOf(p).filter((x) => x.name.includes(half)));
      p.entries = p.entries.filter(([k]) => k !== t.name);
      // Keep the file valid: the removed tensor's bytes are kept as another, non-LoRA tensor.
      p.entries.push(["unused.weight", { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] }]);
    }, names: "weights" });
  }
  make("no-lora-keys", "tensors renamed away from PEFT keys", "ADAPTER_INVALID", { weights: (p) => rename(p, (k) => k.replace("base_model.model.model.layers", "transformer.h")), names: "weights" });
  make("no-lora-keys", "no tensors at all", "ADAPTER_INVALID", { bytes: joinSafetensors({ entries: [], data: Buffer.alloc(0) }), names: "weights" });
  make("duplicate-pair", "a key and its .default variant", "ADAPTER_INVALID", { weights: (p) => {
    const t = pick(rng, tensorsOf(p));
    addTensor(p, t.name.replace(/\.weight$/, ".default.weight"), t.shape);
  }, names: "weights" });
  make("unknown-lora-tensor", "a DoRA magnitude vector", "ADAPTER_INVALID", { weights: (p) => addTensor(p, "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", [16]), names: "weights" });
  make("unknown-lora-tensor", "an lm_head LoRA", "ADAPTER_INVALID", { weights: (p) => addTensor(p, "base_model.model.lm_head.lora_A.weight", [4, 16]), names: "weights" });
  const files = (family: string, note: string, expect: ErrorCode, f: (dir: string) => string): void => {
    const { id, dir } = w.next(`adapter-${family}`);
    cloneDir(bases.adapterDir, dir);
    w.add({ id, category: "adapter", family, note, entry: "adapter", modelDir: bases.modelDir, adapterDir: dir, expect, names: f(dir) });
  };
  files("bin-only", "adapter_model.bin instead of safetensors", "FILE_NOT_FOUND", (d) => { fs.renameSync(path.join(d, weightsFile), path.join(d, "adapter_model.bin")); return path.join(d, weightsFile); });
  files("no-weights", "no weights file", "FILE_NOT_FOUND", (d) => { fs.rmSync(path.join(d, weightsFile)); return path.join(d, weightsFile); });
  files("no-config", "no adapter_config.json", "FILE_NOT_FOUND", (d) => { fs.rmSync(path.join(d, configFile)); return path.join(d, configFile); });
  files("missing", "the folder does not exist", "FILE_NOT_FOUND", (d) => { fs.rmSync(d, { recursive: true }); return d; });
  make("config-not-json", "truncated adapter_config.json", "CONFIG_INVALID", { config: (c) => JSON.stringify(c).slice(0, 1 + rng.int(40)), names: "config" });
  make("config-not-json", "adapter_config.json is a list", "ADAPTER_INVALID", { config: () => "[]", names: "config" });
  make("wrong-shapes", "lora_A stored transposed", "ADAPTER_SHAPE_MISMATCH", { weights: (p) => transpose(p, "lora_A"), names: "weights" });
  make("wrong-shapes", "lora_B stored transposed", "ADAPTER_SHAPE_MISMATCH", { weights: (p) => transpose(p, "lora_B"), names: "weights" });
  {
    const wide = parseModelConfig("config.json", { model_type: "llama", hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: L, intermediate_size: 32, vocab_size: 256 });
    const tmp = path.join(w.root, "wide-adapter");
    writeTinyAdapter(tmp, wide, { seed: 9, r: 4, targets: ["q_proj", "v_proj"] });
    make("wrong-shapes", "an adapter for a model with hidden_size 32", "ADAPTER_SHAPE_MISMATCH", { bytes: fs.readFileSync(path.join(tmp, weightsFile)), names: "weights" });
  }
  make("int-dtype", "lora weights labelled I32", "SAFETENSORS_BAD_DTYPE", { weights: (p) => {
    const t = pick(rng, tensorsOf(p));
    p.entries[t.at] = [t.name, { ...(p.entries[t.at]![1] as Json), dtype: "I32" }];
  }, names: "weights" });
  for (let i = 0; i < 6; i++) {
    const m = randomMutation(rng, baseWeights);
    make("corrupt-weights", `${m.family}: ${m.note}`, m.expect, { bytes: m.bytes, names: "weights" });
  }
  // Weights that read fine but hold NaN or Inf: the readers accept them (as the reference does); the profile
  // must refuse to rank layers by NaN and name the tensor.
  const poison = [NaN, Infinity, -Infinity, NaN];
  poison.forEach((v, i) => {
    const { bytes, name } = poke(baseWeights, (n) => n.includes("lora_"), v, rng);
    make("non-finite-weights", `${v} in ${name} (${i < 3 ? "weight" : "output"} criterion)`, "NUMERICAL", { bytes, names: "weights", run: i < 3 ? "weight" : "output" });
  });
  {
    const { bytes, name } = poke(baseWeights, (n) => n.includes("lora_B"), 1e30, rng);
    make("float32-overflow", `1e30 in ${name}: the output overflows float32`, "NUMERICAL", { bytes, names: bases.modelDir, run: "output" });
  }
  {
    const { id, dir } = w.next("model-non-finite-weights");
    cloneDir(bases.modelDir, dir);
    const st = path.join(dir, "model.safetensors");
    const { bytes } = poke(fs.readFileSync(st), "model.layers.0.input_layernorm.weight", NaN, rng);
    fs.rmSync(st);
    fs.writeFileSync(st, bytes);
    w.add({ id, category: "model", family: "non-finite-weights", note: "NaN in a layer norm of the base model", entry: "run", criterion: "output", modelDir: dir, adapterDir: bases.adapterDir, dataFile: bases.idsData, expect: "NUMERICAL", names: dir });
  }
}

/** Swaps the two dims of every tensor whose name contains `which` (bytes untouched, so only the shape lies). */
function transpose(p: StParts, which: string): void {
  for (const t of tensorsOf(p)) {
    if (t.name.includes(which)) p.entries[t.at] = [t.name, { ...(p.entries[t.at]![1] as Json), shape: [t.shape[1], t.shape[0]] }];
  }
}

/** Datasets that are empty, not UTF-8, oversized, not JSON, mistyped or out of the vocabulary. */
export function datasetCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const idsLines = fs.readFileSync(bases.idsData, "utf8").trimEnd().split("\n");
  const textLines = fs.readFileSync(bases.textData, "utf8").trimEnd().split("\n");
  const add = (family: string, note: string, expect: ErrorCode, content: string | Buffer | ((file: string) => void), o: { text?: boolean; ext?: string; lowMemory?: boolean } = {}): void => {
    const { id, dir } = w.next(`data-${family}`);
    const file = path.join(dir, `data${o.ext ?? ".jsonl"}`);
    if (typeof content === "function") content(file);
    else fs.writeFileSync(file, content);
    const c: HostileCase = { id, category: "dataset", family, note, entry: "dataset", file, vocabSize: o.text ? bases.tokConfig.vocabSize : bases.config.vocabSize, expect, names: file };
    if (o.text) c.tokenizerModelDir = bases.tokModelDir;
    if (o.lowMemory) c.lowMemory = true;
    w.add(c);
  };
  // A copy of one of the base datasets with line k replaced (k drawn from the seed).
  const withLine = (text: boolean, line: (old: string) => string | Buffer): Buffer => {
    const lines: (string | Buffer)[] = [...(text ? textLines : idsLines)];
    const k = rng.int(lines.length);
    lines[k] = line(lines[k] as string);
    return Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from("\n")]));
  };
  for (const [c, ext] of [["", ".jsonl"], ["\n\n\n", ".jsonl"], [" \t\n\r\n  \n", ".txt"]] as const) add("empty", `${JSON.stringify(c)} (${ext})`, "DATASET_EMPTY", c, { ext });
  for (let i = 0; i < 6; i++) {
    const text = i % 2 === 0;
    add("not-utf8", "invalid UTF-8 inside a line", "DATASET_INVALID", withLine(text, (l) => {
      const at = 2 + rng.int(l.length - 4);
      return Buffer.concat([Buffer.from(l.slice(0, at)), invalidUtf8(rng), Buffer.from(l.slice(at))]);
    }), { text, ext: i === 4 ? ".txt" : ".jsonl" });
  }
  const tenMb = 10 * 1024 * 1024;
  add("long-line", "a 10 MB text line", "DATASET_INVALID", (f) => fs.writeFileSync(f, `short line\n${"word ".repeat(tenMb / 5)}\n`), { ext: ".txt", lowMemory: true });
  add("long-line", "a 10 MB JSON line", "DATASET_INVALID", (f) => fs.writeFileSync(f, `${idsLines[0]}\n{"input_ids": [${"1,".repeat(tenMb / 2)}1]}\n`), { lowMemory: true });
  add("huge-file", "a 3 GiB (sparse) file without newlines", "DATASET_INVALID", (f) => { fs.writeFileSync(f, ""); fs.truncateSync(f, 3 * 1024 ** 3); }, { ext: ".txt", lowMemory: true });
  for (let i = 0; i < 4; i++) add("not-json-line", "a truncated JSON line", "DATASET_INVALID", withLine(i % 2 === 0, (l) => l.slice(0, 1 + rng.int(l.length - 2))), { text: i % 2 === 0 });
  for (const v of sample(w, ["[1,2]", "42", "\"text\"", "null", "true"], 4)) add("not-object-line", `a line ${v}`, "DATASET_INVALID", withLine(false, () => v));
  const records: Json[] = [{ text: 42 }, { text: null }, { prompt: "a" }, { prompt: "a", completion: 3 }, { completion: "x" }, { input_ids: "1 2" }, { input_ids: [-1] },
    { input_ids: [1.5] }, { input_ids: [] }, { input_ids: [[1]] }, { input_ids: [1, "2"] }, { input_ids: null }, { sentence1: 5 }, {}];
  for (const r of sample(w, records, 10)) add("field-types", JSON.stringify(r), "DATASET_INVALID", withLine(false, () => JSON.stringify(r)));
  const V = bases.config.vocabSize;
  for (const bad of [V, V + 1 + rng.int(1e6), 2 ** 53 - 1, 1e20]) {
    add("token-out-of-range", `token id ${bad} with vocab_size ${V}`, "TOKEN_OUT_OF_RANGE", withLine(false, (l) => {
      const ids = (JSON.parse(l) as { input_ids: number[] }).input_ids;
      ids[rng.int(ids.length)] = bad;
      return JSON.stringify({ input_ids: ids });
    }));
  }
  add("token-out-of-range", `token id 32000 with the tokenizer's vocab_size ${bases.tokConfig.vocabSize}`, "TOKEN_OUT_OF_RANGE", withLine(true, () => JSON.stringify({ input_ids: [1, 5, bases.tokConfig.vocabSize] })), { text: true });
  add("no-tokenizer", "text with a model that has no tokenizer.json", "TOKENIZER_MISSING", textLines.join("\n"));
  add("deep-line", "input_ids nested 100000 deep", "DATASET_INVALID", withLine(false, () => `{"input_ids":${deepList(100_000).text}}`));
  add("missing", "no such file", "FILE_NOT_FOUND", () => {});
  add("folder", "a folder", "FILE_UNREADABLE", (f) => fs.mkdirSync(f));
}

/** Profiles with one field of a real profile (written by profileAdapter) made invalid, and broken files. */
export async function profileCases(w: CaseWriter): Promise<void> {
  const { rng, bases } = w;
  const base = await profileAdapter({ modelDir: bases.modelDir, adapterDir: bases.adapterDir, dataPath: bases.idsData, maxExamples: 3, maxTokens: 8, device: "cpu", threads: 1 });
  bases.profileFile = path.join(path.dirname(bases.modelDir), "profile.json");
  writeProfile(bases.profileFile, base);
  const add = (family: string, note: string, expect: ErrorCode, content: string | ((file: string) => void)): void => {
    const { id, dir } = w.next(`profile-${family}`);
    const file = path.join(dir, "profile.json");
    if (typeof content === "string") fs.writeFileSync(file, content);
    else content(file);
    w.add({ id, category: "profile", family, note, entry: "profile", file, expect, names: file });
  };
  const INF = "__INF__";
  // A profile with one field replaced; INF becomes the JSON number 1e999, which parses as Infinity.
  const edit = (family: string, note: string, f: (p: Json, m: string) => void): void => {
    const p = structuredClone(base) as unknown as Json;
    const m = pick(rng, base.modules);
    f(p, m);
    add(family, note.replace("MODULE", m), "PROFILE_INVALID", toJson(p).replace(`"${INF}"`, "1e999"));
  };
  const set = (p: Json, keys: (string | number)[], v: unknown): void => {
    let o = p as Record<string | number, unknown>;
    for (const k of keys.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
    if (v === undefined) delete o[keys[keys.length - 1]!];
    else o[keys[keys.length - 1]!] = v;
  };
  const L = base.layers.length;
  const S = base.sequences.length;
  const fields: [string, (m: string) => (string | number)[], unknown[]][] = [
    ["schema", () => ["schema"], ["lora-drop.profile2", 1, null, undefined]],
    ["version", () => ["version"], [2, "1", 0, null]],
    ["layers", () => ["layers"], ["0,1", [0, "1"], [0.5], null, deepList(100_000)]],
    ["modules", () => ["modules"], ["q_proj", [1], [...base.modules, base.modules[0]]]],
    ["importance", () => ["importance"], [null, "x"]],
    ["importance", () => ["importance", "per_layer"], [base.importance.per_layer.slice(1), base.importance.per_layer.map(() => -1), [INF, ...base.importance.per_layer.slice(1)]]],
    ["importance", (m) => ["importance", "per_module", m], [undefined, [1]]],
    ["importance", () => ["importance", "per_layer_raw"], [base.importance.per_layer_raw.map(String)]],
    ["params", (m) => ["adapter", "params", m], [undefined, new Array(L).fill(-1)]],
    ["sequences", () => ["sequences"], [null, "x", [null], [5]]],
    ["sequences", () => ["sequences", rng.int(S), "tokens"], [[], null]],
    ["sequences", () => ["sequences", rng.int(S), "ids"], [[-1], "1 2"]],
    ["sequences", () => ["sequences", rng.int(S), "special"], [[true], "no"]],
    ["norms", () => ["norms"], [null, [], "x"]],
    ["norms", (m) => ["norms", m], [[], undefined]],
    ["norms", (m) => ["norms", m, rng.int(L)], [[], null]],
    ["norms", (m) => ["norms", m, rng.int(L), rng.int(S)], [[1], "x"]],
    ["norms", (m) => ["norms", m, rng.int(L), rng.int(S), 0], ["x", -1, INF]],
  ];
  for (const [family, keys, values] of fields) {
    for (const v of sample(w, values, Math.min(2, values.length))) {
      edit(family, `${family}: ${v instanceof RawJson ? "deeply nested" : JSON.stringify(v) ?? "removed"} (MODULE)`, (p, m) => set(p, keys(m), v));
    }
  }
  const text = JSON.stringify(base);
  add("not-json", "truncated", "PROFILE_INVALID", text.slice(0, 1 + rng.int(text.length - 2)));
  for (const t of ["", "null", "[]", "42"]) add("not-json", JSON.stringify(t), "PROFILE_INVALID", t);
  add("missing", "no such file", "FILE_NOT_FOUND", () => {});
  add("folder", "a folder", "FILE_UNREADABLE", (f) => fs.mkdirSync(f));
}
