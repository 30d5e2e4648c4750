/**
 * Hostile files that parse but lie, for the corpus (see generate.ts): config.json fields of the wrong type or an
 * unknown activation or head, adapter flags given as strings or numbers, LoRA-drop records that contradict the
 * weights, safetensors shapes and offsets written as floats, profiles whose importance does not follow from their
 * raw values, and tokenizers whose patterns backtrack or whose normalizers grow text without bound. Values, positions
 * and patterns are drawn from the seed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorCode } from "../../extension/core/util/errors";
import { HostileCase, cloneDir, CaseWriter } from "./corpus";
import { pick, toJson, splitSafetensors, joinSafetensors, tensorsOf, headerText, assemble } from "./stMutate";
import { RECORD_FILE } from "../../extension/core/adapter/dropRecord";

type Json = Record<string, unknown>;
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")) as Json;

/** Draws `n` distinct elements. */
function sample<T>(w: CaseWriter, a: readonly T[], n: number): T[] {
  return w.rng.shuffle([...a]).slice(0, n);
}

/** config.json values of the wrong type, unknown activations and heads, bad sliding windows. */
export function strictConfigCases(w: CaseWriter): void {
  const base = readJson(path.join(w.bases.modelDir, "config.json"));
  const add = (family: string, note: string, expect: ErrorCode, edit: (c: Json) => void): void => {
    const { id, dir } = w.next(`model-${family}`);
    cloneDir(w.bases.modelDir, dir);
    const c = structuredClone(base);
    edit(c);
    fs.writeFileSync(path.join(dir, "config.json"), toJson(c));
    w.add({ id, category: "model", family, note, entry: "model", modelDir: dir, expect, names: path.join(dir, "config.json") });
  };
  const flags: [string, unknown][] = [["tie_word_embeddings", "yes"], ["tie_word_embeddings", 1], ["tie_word_embeddings", "true"], ["attention_bias", "false"],
    ["attention_bias", 0], ["mlp_bias", "no"], ["mlp_bias", [true]], ["tie_word_embeddings", {}]];
  for (const [k, v] of sample(w, flags, 5)) add("flag-type", `${k}: ${JSON.stringify(v)}`, "CONFIG_INVALID", (c) => { c[k] = v; });
  for (const act of sample(w, ["relu", "gelu", "gelu_new", "tanh", "SiLU", "", "swiglu", 5, ["silu"]], 4)) {
    add("hidden-act", `hidden_act ${JSON.stringify(act)}`, "UNSUPPORTED_ARCHITECTURE", (c) => { c.hidden_act = act; });
  }
  const heads = ["LlamaForSequenceClassification", "LlamaForTokenClassification", "LlamaForQuestionAnswering", "MistralForSequenceClassification", "GPT2LMHeadModel", "BertModel"];
  for (const h of sample(w, heads, 3)) add("architectures", `architectures ["${h}"] on the causal path`, "UNSUPPORTED_ARCHITECTURE", (c) => { c.architectures = [h]; });
  for (const v of sample(w, ["LlamaForCausalLM", 7, [], [3]], 2)) add("architectures-type", `architectures ${JSON.stringify(v)}`, "CONFIG_INVALID", (c) => { c.architectures = v; });
  for (const v of sample(w, [0, -4, "4096", 2.5, true], 3)) {
    add("sliding-window", `mistral with sliding_window ${JSON.stringify(v)}`, "CONFIG_INVALID", (c) => { c.model_type = "mistral"; c.architectures = ["MistralForCausalLM"]; c.sliding_window = v; });
  }
}

/** adapter_config.json flags and fields of the wrong type (PEFT reads "false" as true; this tool must not guess). */
export function strictAdapterCases(w: CaseWriter): void {
  const base = readJson(path.join(w.bases.adapterDir, "adapter_config.json"));
  const values: [string, unknown][] = [["use_rslora", "true"], ["use_rslora", 1], ["fan_in_fan_out", "false"], ["fan_in_fan_out", 0], ["use_dora", "false"], ["use_dora", 0],
    ["inference_mode", "yes"], ["lora_dropout", "0.1"], ["lora_dropout", 1.5], ["lora_dropout", -0.1], ["modules_to_save", 5], ["layers_pattern", 3], ["task_type", 7]];
  for (const [k, v] of sample(w, values, 9)) {
    const { id, dir } = w.next("adapter-flag-type");
    cloneDir(w.bases.adapterDir, dir);
    fs.writeFileSync(path.join(dir, "adapter_config.json"), toJson({ ...base, [k]: v }));
    w.add({ id, category: "adapter", family: "flag-type", note: `${k}: ${JSON.stringify(v)}`, entry: "adapter", modelDir: w.bases.modelDir, adapterDir: dir, expect: "ADAPTER_INVALID", names: path.join(dir, "adapter_config.json") });
  }
}

/** LoRA-drop records that lie: out-of-range or missing layers, drop mode with shared weights, mismatched copies. */
export function recordCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const L = bases.config.numLayers;
  const pruned = bases.pruned!;
  const add = (family: string, note: string, from: string, edit: (rec: Json, dir: string) => string | void, expect: ErrorCode = "ADAPTER_INVALID"): void => {
    const { id, dir } = w.next(`adapter-record-${family}`);
    cloneDir(from, dir);
    const rec = readJson(path.join(dir, RECORD_FILE));
    const names = edit(rec, dir) ?? path.join(dir, RECORD_FILE);
    if (fs.existsSync(path.join(dir, RECORD_FILE))) {
      fs.rmSync(path.join(dir, RECORD_FILE));
      fs.writeFileSync(path.join(dir, RECORD_FILE), toJson(rec));
    }
    // The safetensors copy of the record says the same as the edited sidecar, so the sidecar's own check speaks.
    stripRecordMetadata(dir);
    w.add({ id, category: "adapter", family: `record-${family}`, note, entry: "adapter", modelDir: bases.modelDir, adapterDir: dir, expect, names });
  };
  const keptOf = (rec: Json) => rec.kept_layers as number[];
  const sharedOf = (rec: Json) => rec.shared_layers as number[];
  add("out-of-range", `a kept layer beyond the model's ${L}`, pruned.share, (r) => { r.kept_layers = [...keptOf(r), L + rng.int(50)]; });
  add("out-of-range", "a shared layer beyond the model", pruned.share, (r) => { r.shared_layers = [...sharedOf(r), L + 100 + rng.int(1000)]; });
  add("missing-layer", "a kept layer left out of the record", pruned.share, (r) => { r.kept_layers = keptOf(r).slice(1); });
  add("missing-layer", "a shared layer left out of the record", pruned.share, (r) => { r.shared_layers = sharedOf(r).slice(1); });
  add("drop-with-weights", "mode \"drop\" while the shared layers still carry the LoRA", pruned.share, (r) => { r.mode = "drop"; });
  add("compact-no-shared", "compact tensors but no shared layers", pruned.compact, (r) => { r.kept_layers = [...keptOf(r), ...sharedOf(r)].sort(); r.shared_layers = []; });
  add("format", "format \"peft\" over compact tensors", pruned.compact, (r) => { r.format = "peft"; });
  add("format", "format \"compact\" without compact tensors", pruned.share, (r) => { r.format = "compact"; });
  add("listed-no-lora", "a dropped layer listed as kept", pruned.drop, (r) => { r.kept_layers = [...keptOf(r), sharedOf(r)[0]!]; r.shared_layers = sharedOf(r).slice(1); });
  const types: [string, unknown][] = [["threshold", "0.9"], ["threshold", 1.5], ["keep", 1.5], ["keep", -1], ["version", 2], ["criterion", "magic"], ["importance", [-1]],
    ["importance", "x"], ["shared_init", 7], ["kept_layers", [0, 0]], ["kept_layers", [0.5]], ["source_adapter", 5], ["mode", "merge"]];
  for (const [k, v] of sample(w, types, 7)) add("field-type", `${k}: ${JSON.stringify(v)}`, pruned.share, (r) => { r[k] = v; });
  add("module-name", "a per-module record naming a module the model lacks", pruned.share, (r) => {
    r.kept_layers = { q_proj: keptOf(r), fc9: [0] };
    r.shared_layers = { q_proj: sharedOf(r), fc9: [] };
  });
  {
    // The sidecar and the safetensors metadata disagree: kept as written by prune, the sidecar edited.
    const { id, dir } = w.next("adapter-record-copies-disagree");
    cloneDir(pruned.share, dir);
    const rec = readJson(path.join(dir, RECORD_FILE));
    rec.mode = "drop";
    fs.rmSync(path.join(dir, RECORD_FILE));
    fs.writeFileSync(path.join(dir, RECORD_FILE), toJson(rec));
    w.add({ id, category: "adapter", family: "record-copies-disagree", note: "lora_drop.json says drop, the safetensors metadata says share", entry: "adapter", modelDir: bases.modelDir, adapterDir: dir, expect: "ADAPTER_INVALID", names: path.join(dir, RECORD_FILE) });
  }
  add("legacy", "an older adapter's record in adapter_config.json with a layer out of range", pruned.share, (r, dir) => {
    const cfgFile = path.join(dir, "adapter_config.json");
    const cfg = readJson(cfgFile);
    fs.rmSync(path.join(dir, RECORD_FILE));
    fs.rmSync(cfgFile);
    fs.writeFileSync(cfgFile, toJson({ ...cfg, lora_drop: { ...r, shared_layers: [...sharedOf(r), L] } }));
    return cfgFile;
  });
  {
    const { id, dir } = w.next("adapter-record-compact-unknown-module");
    cloneDir(pruned.compact, dir);
    const st = path.join(dir, "adapter_model.safetensors");
    const p = splitSafetensors(fs.readFileSync(st));
    const m = pick(rng, ["fc9", "attn.c_attn", "query"]);
    // One module's pair renamed (both halves), so the names stay distinct.
    const victim = pick(rng, tensorsOf(p).map((t) => /lora_drop\.shared\.(\w+)\.lora_A/.exec(t.name)?.[1]).filter((x): x is string => x !== undefined));
    p.entries = p.entries.map(([k, v]) => [typeof k === "string" ? k.replace(`lora_drop.shared.${victim}.`, `lora_drop.shared.${m}.`) : k, v]);
    fs.rmSync(st);
    fs.writeFileSync(st, joinSafetensors(p));
    w.add({ id, category: "adapter", family: "record-compact-unknown-module", note: `a compact key of module ${m}`, entry: "adapter", modelDir: bases.modelDir, adapterDir: dir, expect: "ADAPTER_SHAPE_MISMATCH", names: st });
  }
}

/** Removes the `lora_drop.*` metadata of a case's weights (the case's own copy), leaving the sidecar the only record. */
function stripRecordMetadata(dir: string): void {
  const st = path.join(dir, "adapter_model.safetensors");
  const p = splitSafetensors(fs.readFileSync(st));
  p.entries = p.entries.map(([k, v]) => (k === "__metadata__" ? [k, Object.fromEntries(Object.entries(v as Json).filter(([mk]) => !mk.startsWith("lora_drop.")))] : [k, v]));
  fs.rmSync(st);
  fs.writeFileSync(st, joinSafetensors(p));
}

/** Shapes and offsets written as floats (`16.0`, `1.6e1`, `-0`): JSON.parse reads them as integers, the reference refuses them. */
export function floatIntegerCases(w: CaseWriter): void {
  const bytes = fs.readFileSync(path.join(w.bases.adapterDir, "adapter_model.safetensors"));
  for (let i = 0; i < 6; i++) {
    const p = splitSafetensors(bytes);
    const t = pick(w.rng, tensorsOf(p));
    const field = i % 2 === 0 ? "data_offsets" : "shape";
    const values = field === "data_offsets" ? [t.begin, t.end] : t.shape;
    const k = w.rng.int(values.length);
    const v = values[k]!;
    const written = pick(w.rng, [`${v}.0`, `${v}e0`, v === 0 ? "-0" : `${v / 10}e1`, `${v}.000`]);
    const list = `[${values.map((x, j) => (j === k ? written : String(x))).join(",")}]`;
    // The header as JSON text with that one number spelled differently; the data section is unchanged.
    const text = headerText(p.entries).replace(new RegExp(`("${t.name.replace(/\./g, "\\.")}":\\{[^}]*"${field}":)\\[[^\\]]*\\]`), `$1${list}`);
    const { id, dir } = w.next(`st-float-${field.replace("_", "-")}`);
    const file = path.join(dir, "weights.safetensors");
    fs.writeFileSync(file, assemble(text, p.data));
    w.add({ id, category: "safetensors", family: `float-${field}`, note: `${t.name} ${field} ${list}`, entry: "safetensors", file, expect: field === "data_offsets" ? "SAFETENSORS_BAD_OFFSETS" : "SAFETENSORS_HEADER_INVALID", names: file });
  }
}

/** Profiles whose normalised importance does not follow from their raw values. */
export function profileConsistencyCases(w: CaseWriter): void {
  const base = readJson(w.bases.profileFile!);
  const imp = base.importance as { per_layer: number[]; per_layer_raw: number[]; per_module: Record<string, number[]>; per_module_raw: Record<string, number[]> };
  const m = Object.keys(imp.per_module)[0]!;
  const edits: [string, (p: typeof imp & Json, root: Json) => void][] = [
    ["per_layer scaled by 1.1 (sums to 1.1)", (p) => { p.per_layer = p.per_layer.map((v) => v * 1.1); }],
    ["two per_layer values swapped", (p) => { const [a, b] = [p.per_layer[0]!, p.per_layer[1]!]; p.per_layer[0] = b; p.per_layer[1] = a; }],
    ["per_layer all zero while raw is not", (p) => { p.per_layer = p.per_layer.map(() => 0); }],
    [`per_module.${m} reversed`, (p) => { p.per_module[m] = [...p.per_module[m]!].reverse(); }],
    ["per_layer_raw doubled (no longer the modules' sum)", (p) => { p.per_layer_raw = p.per_layer_raw.map((v) => 2 * v); }],
    ["criterion \"magic\"", (_p, root) => { root.criterion = "magic"; }],
    ["layers repeated", (_p, root) => { root.layers = (root.layers as number[]).map(() => 0); }],
  ];
  for (const [note, edit] of sample(w, edits, 6)) {
    const { id, dir } = w.next("profile-inconsistent");
    const p = structuredClone(base);
    edit(p.importance as typeof imp & Json, p);
    const file = path.join(dir, "profile.json");
    fs.writeFileSync(file, JSON.stringify(p));
    w.add({ id, category: "profile", family: "inconsistent", note, entry: "profile", file, expect: "PROFILE_INVALID", names: file });
  }
}

/** Tokenizers whose patterns backtrack catastrophically or whose normalizers grow text without bound. */
export function tokenizerBudgetCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const base = readJson(path.join(bases.tokModelDir, "tokenizer.json"));
  const add = (family: string, note: string, edit: (j: Json) => void): void => {
    const { id, dir } = w.next(`tokenizer-${family}`);
    cloneDir(bases.tokModelDir, dir);
    const j = structuredClone(base);
    edit(j);
    const file = path.join(dir, "tokenizer.json");
    fs.rmSync(file);
    fs.writeFileSync(file, toJson(j));
    const c: HostileCase = { id, category: "tokenizer", family, note, entry: "run", criterion: "weight", modelDir: dir, adapterDir: bases.tokAdapterDir, dataFile: bases.textData, expect: "TOKENIZER_INVALID", names: file };
    w.add(c);
  };
  const letter = () => String.fromCharCode(97 + rng.int(26));
  const evil = (): string => {
    const c = letter();
    return pick(rng, [`(${c}+)+$`, `(${c}|${c}${c})+!`, `(${c}*)*\\d`, "(\\w+\\s?)+$", `(.*${c}){12}!`, "([a-zA-Z]+)*[0-9]", `(${c}|\\w)+Z`]);
  };
  for (let i = 0; i < 3; i++) {
    const re = evil();
    add("pattern-budget", `pre_tokenizer Split ${JSON.stringify(re)}`, (j) => { j.pre_tokenizer = { type: "Split", pattern: { Regex: re }, behavior: "Isolated", invert: false }; });
  }
  for (let i = 0; i < 2; i++) {
    const re = evil();
    add("pattern-budget", `normalizer Replace ${JSON.stringify(re)}`, (j) => {
      j.normalizer = { type: "Sequence", normalizers: [{ type: "Replace", pattern: { Regex: re }, content: " " }, ...((j.normalizer as Json).normalizers as unknown[])] };
    });
  }
  const long = 300 + rng.int(5000);
  add("expansion", `Prepend of ${long} characters`, (j) => { j.normalizer = { type: "Prepend", prepend: "x".repeat(long) }; });
  add("expansion", `Replace of every position by ${70 + rng.int(150)} characters`, (j) => { j.normalizer = { type: "Replace", pattern: { Regex: "" }, content: "ab".repeat(35 + rng.int(75)) }; });
  const k = 7 + rng.int(24);
  add("expansion", `${k} Replace steps that each double the text`, (j) => { j.normalizer = { type: "Sequence", normalizers: Array.from({ length: k }, () => ({ type: "Replace", pattern: { String: "a" }, content: "aa" })) }; });
  add("expansion", "a pre-tokenizer Replace of every position by 100 characters", (j) => { j.pre_tokenizer = { type: "Replace", pattern: { Regex: "" }, content: "y".repeat(100) }; });
}
