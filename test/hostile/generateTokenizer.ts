/**
 * Hostile tokenizer.json and tokenizer_config.json files for the corpus (see generate.ts). Each case is a copy of
 * the tiny model that carries Llama 2's real tokenizer, with one tokenizer file broken, run through the whole
 * profile (the tokenizer is loaded before any model run). Cut points, tokens, ids and positions come from the seed;
 * the 50 MB and 100 MB files are written here, never committed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorCode } from "../../extension/core/util/errors";
import { cloneDir, CaseWriter } from "./corpus";
import { pick, deepList, toJson, invalidUtf8 } from "./stMutate";

type Json = Record<string, unknown>;

/** Broken tokenizer files: not JSON or UTF-8, wrong shapes, unknown merges, huge strings, deep nesting. */
export function tokenizerCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const tokFile = path.join(bases.tokModelDir, "tokenizer.json");
  const base = JSON.parse(fs.readFileSync(tokFile, "utf8")) as Json & { model: Json & { vocab: Record<string, number>; merges: string[] } };
  const text = JSON.stringify(base);
  const tokens = Object.keys(base.model.vocab);
  // A model folder whose tokenizer file `name` holds `content` (bytes, text, or a function writing the file).
  const add = (family: string, note: string, content: string | Buffer | ((file: string) => void), o: { expect?: ErrorCode; name?: string; lowMemory?: boolean } = {}): void => {
    const { id, dir } = w.next(`tokenizer-${family}`);
    cloneDir(bases.tokModelDir, dir);
    const file = path.join(dir, o.name ?? "tokenizer.json");
    fs.rmSync(file, { force: true });
    if (typeof content === "function") content(file);
    else fs.writeFileSync(file, content);
    w.add({ id, category: "tokenizer", family, note, entry: "run", criterion: "weight", modelDir: dir, adapterDir: bases.tokAdapterDir, dataFile: bases.textData,
      expect: o.expect ?? "TOKENIZER_INVALID", names: file, ...(o.lowMemory ? { lowMemory: true } : {}) });
  };
  // The real tokenizer with one edit.
  const edit = (family: string, note: string, f: (j: typeof base) => void): void => {
    const j = structuredClone(base);
    f(j);
    add(family, note, toJson(j));
  };
  const unknownToken = (): string => {
    for (;;) {
      const t = Array.from({ length: 3 + rng.int(6) }, () => String.fromCharCode(0x4e00 + rng.int(0x5000))).join("");
      if (!(t in base.model.vocab)) return t;
    }
  };

  for (let i = 0; i < 2; i++) add("not-json", "truncated", text.slice(0, 1 + rng.int(text.length - 2)));
  for (const t of ["", "[]", "null", "\"tokenizer\""]) add("not-json", JSON.stringify(t), t);
  for (let i = 0; i < 2; i++) {
    const at = 1 + rng.int(text.length - 2);
    add("not-utf8", `invalid UTF-8 at byte ${at}`, Buffer.concat([Buffer.from(text.slice(0, at)), invalidUtf8(rng), Buffer.from(text.slice(at))]));
  }
  edit("no-model", "no model", (j) => { delete (j as Json).model; });
  for (const v of [null, [1, 2], "BPE"]) edit("no-model", `model ${JSON.stringify(v)}`, (j) => { (j as Json).model = v; });
  for (const v of sampleOf(rng, ["Foo", "bpe", "WordLevelX", "", 42, null], 4)) edit("model-type", `model.type ${JSON.stringify(v)}`, (j) => { j.model.type = v; });
  for (const v of sampleOf(rng, ["12", -1, 1.5, null, [3], true, 2 ** 40], 4)) {
    const t = pick(rng, tokens);
    edit("vocab-not-number", `vocab[${JSON.stringify(t)}] = ${JSON.stringify(v)}`, (j) => { (j.model.vocab as Json)[t] = v; });
  }
  for (const v of [null, [1, 2], "vocab"]) edit("vocab-shape", `vocab ${JSON.stringify(v)}`, (j) => { (j.model as Json).vocab = v; });
  for (let i = 0; i < 2; i++) {
    const u = unknownToken();
    edit("merge-unknown-token", `a merge with ${JSON.stringify(u)}`, (j) => {
      const k = rng.int(j.model.merges.length);
      const [a] = j.model.merges[k]!.split(" ");
      j.model.merges[k] = i === 0 ? `${a} ${u}` : `${u} ${a}`;
    });
  }
  {
    // Two tokens of the vocabulary whose concatenation is not in it: the merge's result is unknown.
    let a = "", b = "";
    do { a = pick(rng, tokens); b = pick(rng, tokens); } while (a + b in base.model.vocab || a.includes(" ") || b.includes(" "));
    edit("merge-unknown-token", `merge "${a} ${b}" whose result is not in the vocabulary`, (j) => { j.model.merges.push(`${a} ${b}`); });
  }
  for (const v of [42, "nospace", "a b c", null]) edit("merge-shape", `a merge ${JSON.stringify(v)}`, (j) => { (j.model.merges as unknown[])[rng.int(j.model.merges.length)] = v; });
  edit("merge-shape", "merges null", (j) => { (j.model as Json).merges = null; });
  for (const v of [null, { id: 1 }, [{ id: "1", content: "<s>" }], [{ id: 1, content: 5 }]]) edit("added-tokens", `added_tokens ${JSON.stringify(v)}`, (j) => { (j as Json).added_tokens = v; });
  edit("component", "an unknown normalizer", (j) => { (j as Json).normalizer = { type: `Norm${rng.int(1000)}` }; });
  edit("component", "a pre-tokenizer regex that does not compile", (j) => { (j as Json).pre_tokenizer = { type: "Split", pattern: { Regex: "((a" }, behavior: "Isolated", invert: false }; });
  edit("component", "decoder 42", (j) => { (j as Json).decoder = 42; });
  const mb50 = 50 * 1024 * 1024;
  add("huge-string", "a 50 MB string in the normalizer", (f) => fs.writeFileSync(f, text.replace(/"normalizer":\{/, `"normalizer":{"padding":"${"x".repeat(mb50)}",`)));
  add("huge-string", "a 50 MB token in the vocabulary", (f) => fs.writeFileSync(f, text.replace(/"vocab":\{/, `"vocab":{"${"y".repeat(mb50)}":7,`)));
  add("huge-file", "a 100 MB (sparse) tokenizer.json", (f) => { fs.writeFileSync(f, ""); fs.truncateSync(f, 100 * 1024 * 1024); }, { lowMemory: true });
  add("deep", "model nested 100000 deep", toJson({ ...base, model: deepList(100_000) }));
  add("deep", "normalizer nested 100000 deep", text.replace(/"normalizer":/, `"normalizer":${"{\"a\":".repeat(100_000)}1${"}".repeat(100_000)},"x":`));
  add("not-a-file", "tokenizer.json is a folder", (f) => fs.mkdirSync(f), { expect: "FILE_UNREADABLE" });
  const cfg = fs.readFileSync(path.join(bases.tokModelDir, "tokenizer_config.json"), "utf8");
  add("config", "truncated tokenizer_config.json", cfg.slice(0, 1 + rng.int(cfg.length - 2)), { name: "tokenizer_config.json" });
  add("config", "tokenizer_config.json is a list", "[]", { name: "tokenizer_config.json" });
  add("config", "tokenizer_config.json not UTF-8", Buffer.concat([Buffer.from(cfg.slice(0, 10)), invalidUtf8(rng), Buffer.from(cfg.slice(10))]), { name: "tokenizer_config.json" });
}

/** Draws `n` distinct elements. */
function sampleOf<T>(rng: CaseWriter["rng"], a: readonly T[], n: number): T[] {
  return rng.shuffle([...a]).slice(0, n);
}
