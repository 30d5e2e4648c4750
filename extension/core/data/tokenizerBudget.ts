/**
 * Time and size budgets for the parts of tokenizer.json that run code the file chooses: the regular expressions of
 * Split and Replace steps (pre-tokenizer, normalizer, decoder) and the normalizers that insert text (Replace,
 * Prepend). The library runs them without a limit, so a pattern such as `(a+)+$` hangs and a Replace of every
 * character by a long string grows text to gigabytes. Checked when the tokenizer is loaded, before the library
 * sees the file:
 *  - each pattern runs on probe texts (runs of the characters it names and of common classes, with and without a
 *    non-matching end) under PATTERN_TIME_LIMIT_MS, the budget of target_modules patterns;
 *  - the most a normalizer or pre-tokenizer can grow a text (a bound computed from the steps) must stay under
 *    MAX_TEXT_EXPANSION.
 * Encoding itself then runs under ENCODE_TIME_LIMIT_MS (tokenize.ts), for whatever a probe could not foresee.
 */
import { describeValue } from "../util/errors";
import { PATTERN_TIME_LIMIT_MS, runWithTimeLimit, TIMED_OUT } from "../util/safeRegex";
import { fail } from "./tokenizerFile";

/** The most a normalizer or pre-tokenizer may multiply a text's length by (Bert's normalizer: 3, with NFD: about 9). */
export const MAX_TEXT_EXPANSION = 64;
/** Longest text a Replace, Prepend or Metaspace step may insert. */
export const MAX_INSERTED_CHARS = 256;
/** Longest one encode call may take, in ms (tokenising a prefix of a few thousand characters takes milliseconds). */
export const ENCODE_TIME_LIMIT_MS = 5000;
/** Longest building the tokenizer may take, in ms (Llama's 32k vocabulary takes a fraction of a second). */
export const BUILD_TIME_LIMIT_MS = 20_000;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The children of a Sequence step, under whichever key its kind uses. */
function children(step: Json): unknown[] {
  for (const k of ["normalizers", "pretokenizers", "decoders", "processors"]) if (Array.isArray(step[k])) return step[k] as unknown[];
  return [];
}

/** Every step of a component (Sequence steps flattened), with the field path for messages. */
function steps(root: unknown, field: string, depth = 0): { step: Json; field: string }[] {
  if (!isObject(root) || depth > 16) return [];
  return [{ step: root, field }, ...children(root).flatMap((c, i) => steps(c, `${field}[${i}]`, depth + 1))];
}

/**
 * A bound on how much a component can multiply a text's length: Sequence steps multiply, a Replace by content c
 * at most (1 + |c|) per character (its pattern may match the empty string at every position), Unicode
 * normalisation at most 3 per character (NFD/NFKD of typical text; NFKC of a few rare ligatures is longer).
 */
function expansion(step: Json, depth = 0): number {
  if (depth > 16) return Infinity;
  switch (step.type) {
    case "Sequence": return children(step).reduce((f: number, c) => f * (isObject(c) ? expansion(c, depth + 1) : 1), 1);
    case "Replace": {
      const content = typeof step.content === "string" ? step.content.length : 0;
      const pattern = isObject(step.pattern) ? step.pattern : {};
      // A literal pattern of length k replaced by c: at most max(1, c / k) per character; a regex may match "".
      if (typeof pattern.String === "string" && pattern.String.length > 0) return Math.max(1, content / pattern.String.length);
      return 1 + content;
    }
    case "BertNormalizer": return 3 * (step.strip_accents === false ? 1 : 3);
    case "NFD": case "NFKD": case "NFC": case "NFKC": case "Precompiled": return 3;
    default: return 1;
  }
}

/** The characters a pattern names literally, and representatives of the classes text is made of. */
function probeChars(source: string): string[] {
  const literal = [...new Set(source.replace(/\\[pPuxc]\{?[\w=]*\}?|\\./g, "").split("").filter((c) => /[\p{L}\p{N}\p{P}\p{S} ]/u.test(c)))].slice(0, 24);
  return [...new Set([...literal, "a", "Z", "1", " ", "\t", "\n", "é", "中", "!", "'", "_", "▁"])];
}

/** Texts on which a backtracking pattern shows itself: long runs of one character, then an end that breaks the match. */
function probeTexts(source: string): string[] {
  const texts: string[] = [];
  for (const c of probeChars(source)) for (const end of ["", "!", "\u0000", "a"]) texts.push(c.repeat(48) + end);
  texts.push("Hello world, it's 2024: 123 + 456 = 579.   Ünïcödé 中文 ▁x\n\ttabs");
  return texts;
}

/** Compiles a tokenizer pattern as the library does (Unicode, global); undefined when JS cannot (the library reports those). */
function compile(source: string): RegExp | undefined {
  try {
    return new RegExp(source, "gu");
  } catch {
    return undefined;
  }
}

/**
 * Checks tokenizer.json's patterns and inserted texts before the library builds anything from them. Throws
 * TOKENIZER_INVALID naming the file and the step's field.
 */
export function checkTokenizerBudget(file: string, json: Json): void {
  for (const component of ["normalizer", "pre_tokenizer", "decoder"]) {
    const all = steps(json[component], component);
    for (const { step, field } of all) {
      for (const key of ["content", "prepend", "replacement"]) {
        const v = step[key];
        if (typeof v === "string" && v.length > MAX_INSERTED_CHARS) {
          fail(file, `${step.type} inserts a text of ${v.length} characters; at most ${MAX_INSERTED_CHARS} are allowed (a tokenizer inserts a marker, not a text)`, `${field}.${key}`);
        }
      }
      const pattern = isObject(step.pattern) ? step.pattern.Regex : undefined;
      if (pattern === undefined) continue;
      if (typeof pattern !== "string") fail(file, `pattern.Regex must be a string, got ${describeValue(pattern)}`, `${field}.pattern`);
      const re = compile(pattern);
      if (!re) continue;
      for (const text of probeTexts(pattern)) {
        const r = runWithTimeLimit(() => text.replace(re, ""), PATTERN_TIME_LIMIT_MS);
        if (r === TIMED_OUT) {
          fail(file, `${step.type} pattern ${describeValue(pattern)} takes more than ${PATTERN_TIME_LIMIT_MS} ms on a ${text.length}-character text ` +
            "(catastrophic backtracking); simplify the pattern", `${field}.pattern`);
        }
      }
    }
    if (component !== "decoder" && isObject(json[component])) {
      const grow = expansion(json[component] as Json);
      if (grow > MAX_TEXT_EXPANSION) {
        fail(file, `the ${component} can make a text up to ${Number.isFinite(grow) ? Math.round(grow) : "unboundedly many"} times longer; at most ${MAX_TEXT_EXPANSION} is allowed ` +
          "(each step that inserts text multiplies the length)", component);
      }
    }
  }
}
