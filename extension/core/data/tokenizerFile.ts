/**
 * Reading tokenizer.json (and tokenizer_config.json) safely before @huggingface/tokenizers sees them. The library
 * trusts its input: it accepts vocabularies whose ids are strings, merges of tokens it does not have and unknown
 * model types (silently producing wrong ids), and it throws plain TypeErrors on others. Here the file's size is
 * checked before it is read, its bytes must be UTF-8, its JSON bounded in depth and string length, and the parts
 * the library relies on (the model, its vocabulary, merges and added tokens) checked as the Rust `tokenizers`
 * crate checks them. Every failure is a LoraDropError naming the file and the field.
 */
import { describeValue, LoraDropError } from "../util/errors";
import { readRegularFile } from "../io/regularFile";

/** Largest tokenizer file read (the largest real ones, e.g. Gemma 3's, are about 33 MB). */
export const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;
/** Longest string value or key (real files: tokens of a few hundred bytes, a charsmap of under 1 MB). */
export const MAX_TOKENIZER_STRING = 4 * 1024 * 1024;
/** Deepest JSON nesting (real files: under 10). */
export const MAX_TOKENIZER_DEPTH = 64;
/** Model types the library runs. */
export const TOKENIZER_MODEL_TYPES = ["BPE", "WordPiece", "WordLevel", "Unigram"] as const;

/** Reads a tokenizer.json or tokenizer_config.json as a checked JSON object; `kind` says which checks apply. */
export function readTokenizerJson(file: string, kind: "tokenizer" | "config"): Record<string, unknown> {
  const json = parseBounded(file, readUtf8(file));
  if (!isObject(json)) fail(file, "the file must hold a JSON object", "(root)");
  if (kind === "tokenizer") checkTokenizerShape(file, json);
  return json;
}

/** Throws a TOKENIZER_INVALID error naming the file (and field). */
export function fail(file: string, message: string, field?: string): never {
  throw new LoraDropError("TOKENIZER_INVALID", field && field !== "(root)" ? `${field}: ${message}` : message, file, field);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readUtf8(file: string): string {
  // Non-blocking, regular files only, size checked before reading: a FIFO or /dev/zero in the place of the tokenizer costs nothing.
  const bytes = readRegularFile(file, { maxBytes: MAX_TOKENIZER_BYTES, tooLargeCode: "TOKENIZER_INVALID", what: "a tokenizer" });
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(file, "not UTF-8 text (a tokenizer file is UTF-8 JSON)");
  }
}

function parseBounded(file: string, text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(file, `not valid JSON (${(e as Error).message})`);
  }
  // Iterative, so that a file nested 100 000 levels deep cannot overflow the stack here (the library recurses).
  const stack: [unknown, number, string][] = [[json, 0, "(root)"]];
  while (stack.length > 0) {
    const [v, depth, at] = stack.pop()!;
    if (typeof v === "string") {
      if (v.length > MAX_TOKENIZER_STRING) fail(file, `a string of ${v.length} characters, more than the ${MAX_TOKENIZER_STRING} a tokenizer holds`, at);
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth >= MAX_TOKENIZER_DEPTH) fail(file, `nested more than ${MAX_TOKENIZER_DEPTH} levels deep`, at);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], depth + 1, at]);
    } else {
      for (const [k, x] of Object.entries(v)) {
        if (k.length > MAX_TOKENIZER_STRING) fail(file, `a key of ${k.length} characters`, at);
        // Field names for messages: the path of keys, with array indices left out (`model.vocab`, `added_tokens`).
        stack.push([x, depth + 1, depth < 3 ? (at === "(root)" ? k : `${at}.${k}`) : at]);
      }
    }
  }
  return json;
}

/** The parts of tokenizer.json the library relies on, checked before it builds anything from them. */
function checkTokenizerShape(file: string, j: Record<string, unknown>): void {
  const model = j.model;
  if (!isObject(model)) fail(file, `no "model" object (the tokenizer's algorithm and vocabulary), got ${describeValue(model)}`, "model");
  const type = model.type;
  if (type !== undefined && !(TOKENIZER_MODEL_TYPES as readonly unknown[]).includes(type)) {
    fail(file, `model type ${describeValue(type)} is not one this tool can run (${TOKENIZER_MODEL_TYPES.join(", ")})`, "model.type");
  }
  // Without a type the library guesses from the vocabulary's form, as older files need.
  const kind = type ?? (Array.isArray(model.vocab) ? "Unigram" : "merges" in model ? "BPE" : "WordPiece");
  if (kind === "Unigram") {
    checkUnigram(file, model);
  } else {
    const vocab = checkVocabMap(file, model.vocab);
    if (kind === "BPE") checkMerges(file, model, vocab);
  }
  for (const k of ["unk_token", "continuing_subword_prefix"]) {
    if (model[k] !== undefined && model[k] !== null && typeof model[k] !== "string") fail(file, `must be a string, got ${describeValue(model[k])}`, `model.${k}`);
  }
  const added = j.added_tokens;
  if (added !== undefined) {
    if (!Array.isArray(added)) fail(file, `must be a list, got ${describeValue(added)}`, "added_tokens");
    added.forEach((t, i) => {
      if (!isObject(t) || !isTokenId(t.id) || typeof t.content !== "string") {
        fail(file, `entry ${i} needs an integer "id" from 0 and a string "content", got ${describeValue(t)}`, "added_tokens");
      }
    });
  }
  for (const k of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) {
    if (j[k] !== undefined && j[k] !== null && !isObject(j[k])) fail(file, `must be an object or null, got ${describeValue(j[k])}`, k);
  }
}

function isTokenId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 31;
}

function checkVocabMap(file: string, vocab: unknown): Map<string, number> {
  if (!isObject(vocab)) fail(file, `must map each token to its id, got ${describeValue(vocab)}`, "model.vocab");
  const map = new Map<string, number>();
  for (const [token, id] of Object.entries(vocab)) {
    if (!isTokenId(id)) fail(file, `token ${describeValue(token)} has id ${describeValue(id)}; ids are integers from 0`, "model.vocab");
    map.set(token, id);
  }
  return map;
}

function checkUnigram(file: string, model: Record<string, unknown>): void {
  const vocab = model.vocab;
  if (!Array.isArray(vocab)) fail(file, `a Unigram vocabulary is a list of [token, score] pairs, got ${describeValue(vocab)}`, "model.vocab");
  vocab.forEach((e, i) => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== "string" || typeof e[1] !== "number" || !Number.isFinite(e[1])) {
      fail(file, `entry ${i} must be a [token, score] pair, got ${describeValue(e)}`, "model.vocab");
    }
  });
  const unk = model.unk_id;
  if (unk !== undefined && unk !== null && !(isTokenId(unk) && unk < vocab.length)) fail(file, `must be an index into the vocabulary (0…${vocab.length - 1}), got ${describeValue(unk)}`, "model.unk_id");
}

/** BPE merges: each pair's tokens and their merge must be in the vocabulary (as the Rust crate requires). */
function checkMerges(file: string, model: Record<string, unknown>, vocab: Map<string, number>): void {
  const merges = model.merges;
  if (!Array.isArray(merges)) fail(file, `a BPE model needs a list of merges, got ${describeValue(merges)}`, "model.merges");
  const prefix = typeof model.continuing_subword_prefix === "string" ? model.continuing_subword_prefix : "";
  const stringForm = typeof merges[0] === "string";
  merges.forEach((m, i) => {
    let pair: unknown[] | undefined;
    if (stringForm && typeof m === "string") pair = m.split(" ");
    else if (!stringForm && Array.isArray(m)) pair = m;
    if (!pair || pair.length !== 2 || pair.some((p) => typeof p !== "string" || p === "")) {
      fail(file, `merge ${i} must be ${stringForm ? `"a b" (two tokens and one space)` : `a pair of tokens`} like the others, got ${describeValue(m)}`, "model.merges");
    }
    const [a, b] = pair as [string, string];
    const merged = a + (prefix && b.startsWith(prefix) ? b.slice(prefix.length) : b);
    for (const t of [a, b, merged]) {
      if (!vocab.has(t)) fail(file, `merge ${i} (${describeValue(m)}) uses ${describeValue(t)}, which is not in the vocabulary`, "model.merges");
    }
  });
}
