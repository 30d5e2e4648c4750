/**
 * Datasets: JSONL (one object per line with `text`, or `prompt` + `completion`, or pre-tokenised `input_ids`)
 * or plain text (one example per line). Tokenised into examples that carry which positions are loss targets.
 */
import * as fs from "node:fs";
import { LoraDropError } from "./errors";
import { TextTokenizer } from "./tokenize";

/** One dataset record as read. */
export interface RawExample {
  /** 1-based line number in the file. */
  line: number;
  text?: string;
  prompt?: string;
  completion?: string;
  inputIds?: number[];
  /** Every field of the JSON object (for stratifying by label). */
  fields: Record<string, unknown>;
}

/** A tokenised example. */
export interface TokenizedExample {
  ids: number[];
  tokens: string[];
  special: boolean[];
  /** lossMask[t]: token t is a target (predicted from t-1). Completion tokens only for prompt/completion data. */
  lossMask: boolean[];
  /** Index of the raw example. */
  example: number;
}

/** Largest dataset file read in one go. */
export const MAX_DATASET_BYTES = 2 * 1024 ** 3;

/** Reads and validates a dataset file. */
export function readDataset(file: string): RawExample[] {
  let buf: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new LoraDropError("DATASET_INVALID", "not a file", file);
    if (st.size > MAX_DATASET_BYTES) throw new LoraDropError("DATASET_INVALID", `file is ${st.size} bytes, more than the ${MAX_DATASET_BYTES}-byte limit`, file);
    buf = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof LoraDropError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoraDropError(code === "ENOENT" ? "FILE_NOT_FOUND" : "FILE_UNREADABLE", code === "ENOENT" ? "dataset file not found" : `cannot read (${code})`, file);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new LoraDropError("DATASET_INVALID", "the file is not valid UTF-8", file);
  }
  const lines = text.split(/\r?\n/);
  const jsonl = /\.(jsonl|json)$/i.test(file);
  const out: RawExample[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    if (!jsonl) {
      out.push({ line, text: raw, fields: { text: raw } });
      return;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new LoraDropError("DATASET_INVALID", `line ${line} is not JSON (${(e as Error).message})`, file, `line ${line}`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new LoraDropError("DATASET_INVALID", `line ${line} is not a JSON object`, file, `line ${line}`);
    out.push(parseRecord(file, line, obj as Record<string, unknown>));
  });
  if (out.length === 0) throw new LoraDropError("DATASET_EMPTY", "the dataset has no examples", file);
  return out;
}

function parseRecord(file: string, line: number, o: Record<string, unknown>): RawExample {
  const bad = (msg: string, field: string): never => { throw new LoraDropError("DATASET_INVALID", `line ${line}: ${msg}`, file, field); };
  if (o.input_ids !== undefined) {
    const ids = o.input_ids;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((v) => Number.isInteger(v) && v >= 0)) bad("input_ids must be a non-empty list of non-negative integers", "input_ids");
    return { line, inputIds: ids as number[], fields: o };
  }
  if (o.prompt !== undefined || o.completion !== undefined) {
    if (typeof o.prompt !== "string" || typeof o.completion !== "string") bad("prompt and completion must both be strings", "prompt");
    return { line, prompt: o.prompt as string, completion: o.completion as string, fields: o };
  }
  if (typeof o.text === "string") return { line, text: o.text, fields: o };
  if (typeof o.sentence1 === "string") {
    const t = typeof o.sentence2 === "string" ? `${o.sentence1}\n${o.sentence2}` : o.sentence1;
    return { line, text: t, fields: o };
  }
  return bad("needs a `text` string, `prompt` + `completion`, or `input_ids`", "text");
}

/** Tokenises examples, truncating each to maxLength tokens, and checks every id against the vocabulary. */
export function tokenizeExamples(file: string, examples: RawExample[], tokenizer: TextTokenizer | undefined, vocabSize: number, maxLength: number): TokenizedExample[] {
  return examples.map((ex, index) => {
    let ids: number[];
    let tokens: string[];
    let lossMask: boolean[];
    if (ex.inputIds) {
      ids = ex.inputIds;
      tokens = ids.map((id) => tokenizer?.tokenString(id) ?? String(id));
      lossMask = ids.map((_, t) => t > 0);
    } else {
      if (!tokenizer) throw new LoraDropError("TOKENIZER_MISSING", "the dataset has text but the model folder has no tokenizer.json (give pre-tokenised input_ids instead)", file);
      if (ex.prompt !== undefined) {
        const p = tokenizer.encode(ex.prompt, true);
        const c = tokenizer.encode(ex.completion!, false);
        ids = [...p.ids, ...c.ids];
        tokens = [...p.tokens, ...c.tokens];
        lossMask = ids.map((_, t) => t >= p.ids.length && t > 0);
      } else {
        const e = tokenizer.encode(ex.text!, true);
        ids = e.ids;
        tokens = e.tokens;
        lossMask = ids.map((_, t) => t > 0);
      }
    }
    if (ids.length > maxLength) {
      ids = ids.slice(0, maxLength);
      tokens = tokens.slice(0, maxLength);
      lossMask = lossMask.slice(0, maxLength);
    }
    for (const id of ids) {
      if (id >= vocabSize) throw new LoraDropError("TOKEN_OUT_OF_RANGE", `line ${ex.line}: token id ${id} is not below the model's vocab_size ${vocabSize}`, file, `line ${ex.line}`);
    }
    if (ids.length === 0) throw new LoraDropError("DATASET_INVALID", `line ${ex.line}: the example has no tokens`, file, `line ${ex.line}`);
    const special = ids.map((id) => tokenizer?.isSpecial(id) ?? false);
    return { ids, tokens, special, lossMask, example: index };
  });
}
