/**
 * Datasets: JSONL (one object per line with `text`, or `prompt` + `completion`, or pre-tokenised `input_ids`)
 * or plain text (one example per line). Tokenised into examples that carry which positions are loss targets.
 */
import * as fs from "node:fs";
import { LoraDropError } from "../util/errors";
import { TextTokenizer } from "./tokenize";
import { openRegularFile } from "../io/regularFile";
import type { PairEncoding } from "../models/arch";

/** One dataset record as read. */
export interface RawExample {
  /** 1-based line number in the file. */
  line: number;
  text?: string;
  /** The second sentence of a `sentence1`/`sentence2` pair (encoded as a pair by encoders' tokenizers). */
  textPair?: string;
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
  /** Class index of a sequence-classification example (its `label` field). */
  label?: number;
  /** Token type (segment) ids of a sentence pair encoded as a pair: 0 for the first sentence, 1 for the second. */
  typeIds?: number[];
}

/** Longest line accepted, in bytes: far beyond any example a model can take, and a bound on what one line costs. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Most bytes read from a dataset before giving up (pass `maxExamples` to stop early in larger files). */
export const MAX_DATASET_BYTES = 2 * 1024 ** 3;
const CHUNK_BYTES = 1024 * 1024;

/** Options of readDataset. */
export interface ReadDatasetOptions {
  /** Stop after this many examples; the rest of the file is not read. */
  maxExamples?: number;
}

/**
 * Reads and validates a dataset file. The file is streamed in chunks: memory holds one line and the examples kept,
 * never the whole file, so multi-gigabyte files with `maxExamples` cost only what they are asked for, and a line
 * longer than MAX_LINE_BYTES is refused before it is assembled.
 */
export function readDataset(file: string, opts: ReadDatasetOptions = {}): RawExample[] {
  const maxExamples = opts.maxExamples ?? Infinity;
  // Non-blocking and regular files only: a FIFO or a device named as the dataset is refused, never waited on.
  const { fd } = openRegularFile(file, { maxBytes: Number.MAX_SAFE_INTEGER, what: "a dataset (.jsonl or .txt)" });
  const jsonl = /\.(jsonl|json)$/i.test(file);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const out: RawExample[] = [];
  const take = (bytes: Buffer, line: number): void => {
    let raw: string;
    try {
      raw = decoder.decode(bytes);
    } catch {
      throw new LoraDropError("DATASET_INVALID", `line ${line} is not valid UTF-8`, file, `line ${line}`);
    }
    if (raw.endsWith("\r")) raw = raw.slice(0, -1);
    if (line === 1 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    if (raw.trim() === "") return;
    if (!jsonl) {
      out.push({ line, text: raw, fields: { text: raw } });
      return;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new LoraDropError("DATASET_INVALID", `line ${line} is not JSON (${(e as Error).message.slice(0, 200)})`, file, `line ${line}`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new LoraDropError("DATASET_INVALID", `line ${line} is not a JSON object`, file, `line ${line}`);
    out.push(parseRecord(file, line, obj as Record<string, unknown>));
  };
  try {
    const chunk = Buffer.alloc(CHUNK_BYTES);
    // Pieces of the current line; a newline byte never occurs inside a multi-byte UTF-8 sequence, so splitting
    // the bytes at 0x0A and decoding each line alone is exact.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let line = 1;
    let consumed = 0;
    for (;;) {
      if (out.length >= maxExamples) break;
      if (consumed >= MAX_DATASET_BYTES) {
        throw new LoraDropError("DATASET_INVALID", `more than ${MAX_DATASET_BYTES} bytes read; use fewer examples (--max-examples) or a smaller file`, file);
      }
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, null);
      } catch (e) {
        throw new LoraDropError("FILE_UNREADABLE", `read failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
      }
      if (n === 0) break;
      consumed += n;
      let start = 0;
      while (start < n && out.length < maxExamples) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl === -1 || nl >= n ? n : nl;
        pendingBytes += end - start;
        if (pendingBytes > MAX_LINE_BYTES) {
          throw new LoraDropError("DATASET_INVALID", `line ${line} is longer than ${MAX_LINE_BYTES} bytes; split it or shorten it`, file, `line ${line}`);
        }
        pending.push(Buffer.from(chunk.subarray(start, end)));
        if (end === n) break;
        take(pending.length === 1 ? pending[0]! : Buffer.concat(pending), line);
        pending = [];
        pendingBytes = 0;
        line++;
        start = end + 1;
      }
    }
    if (out.length < maxExamples && pendingBytes > 0) take(Buffer.concat(pending), line);
  } finally {
    fs.closeSync(fd);
  }
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
    if (o.sentence2 !== undefined && typeof o.sentence2 !== "string") bad("sentence2 must be a string", "sentence2");
    return { line, text: o.sentence1, ...(typeof o.sentence2 === "string" ? { textPair: o.sentence2 } : {}), fields: o };
  }
  return bad("needs a `text` string, `prompt` + `completion`, or `input_ids`", "text");
}

/** Tokenises examples, truncating each to maxLength tokens, and checks every id against the vocabulary. */
export function tokenizeExamples(file: string, examples: RawExample[], tokenizer: TextTokenizer | undefined, vocabSize: number, maxLength: number, pairs: PairEncoding = "join"): TokenizedExample[] {
  return examples.map((ex, index) => {
    let ids: number[];
    let tokens: string[];
    let lossMask: boolean[];
    let typeIds: number[] | undefined;
    if (ex.inputIds) {
      ids = ex.inputIds.slice(0, maxLength);
      // Checked before the tokenizer is asked for the strings of ids it does not have.
      checkRange(file, ex.line, ids, vocabSize);
      tokens = ids.map((id) => tokenizer?.tokenString(id) ?? String(id));
      lossMask = ids.map((_, t) => t > 0);
    } else {
      if (!tokenizer) throw new LoraDropError("TOKENIZER_MISSING", "the dataset has text but the model folder has no tokenizer.json (give pre-tokenised input_ids instead)", file);
      if (ex.prompt !== undefined) {
        const p = encodeBounded(tokenizer, ex.prompt, true, maxLength);
        const c = p.ids.length >= maxLength ? { ids: [], tokens: [] } : encodeBounded(tokenizer, ex.completion!, false, maxLength - p.ids.length);
        ids = [...p.ids, ...c.ids];
        tokens = [...p.tokens, ...c.tokens];
        lossMask = ids.map((_, t) => t >= p.ids.length && t > 0);
      } else if (ex.textPair !== undefined && pairs === "pair") {
        // Pairs longer than maxLength lose the end of the second sentence (the classifier reads the first token).
        const e = tokenizer.encodePair(boundedPrefix(ex.text!, maxLength), boundedPrefix(ex.textPair, maxLength));
        ids = e.ids;
        tokens = e.tokens;
        typeIds = e.typeIds;
        lossMask = ids.map((_, t) => t > 0);
      } else {
        const e = encodeBounded(tokenizer, ex.textPair !== undefined ? `${ex.text!}\n${ex.textPair}` : ex.text!, true, maxLength);
        ids = e.ids;
        tokens = e.tokens;
        lossMask = ids.map((_, t) => t > 0);
      }
    }
    if (ids.length > maxLength) {
      ids = ids.slice(0, maxLength);
      tokens = tokens.slice(0, maxLength);
      lossMask = lossMask.slice(0, maxLength);
      typeIds = typeIds?.slice(0, maxLength);
    }
    checkRange(file, ex.line, ids, vocabSize);
    if (ids.length === 0) throw new LoraDropError("DATASET_INVALID", `line ${ex.line}: the example has no tokens`, file, `line ${ex.line}`);
    const special = ids.map((id) => tokenizer?.isSpecial(id) ?? false);
    // A classification label is carried as read; the trainer checks it against the model's classes.
    const label = ex.fields.label;
    return {
      ids, tokens, special, lossMask, example: index, ...(Number.isInteger(label) && (label as number) >= 0 ? { label: label as number } : {}),
      ...(typeIds?.some((t) => t !== 0) ? { typeIds } : {}),
    };
  });
}

function checkRange(file: string, line: number, ids: number[], vocabSize: number): void {
  for (const id of ids) {
    if (id >= vocabSize) throw new LoraDropError("TOKEN_OUT_OF_RANGE", `line ${line}: token id ${id} is not below the model's vocab_size ${vocabSize}`, file, `line ${line}`);
  }
}

/** Tokens past the kept ones that a prefix must yield before its first tokens are trusted to equal the full text's. */
const PREFIX_MARGIN_TOKENS = 32;

/** A prefix of `text` long enough for `maxTokens` tokens (a token is rarely over 16 characters), cut between characters. */
function boundedPrefix(text: string, maxTokens: number): string {
  const chars = Math.max(1024, 16 * (maxTokens + PREFIX_MARGIN_TOKENS));
  if (chars >= text.length) return text;
  const hi = text.charCodeAt(chars - 1);
  return text.slice(0, hi >= 0xd800 && hi <= 0xdbff ? chars - 1 : chars);
}

/**
 * Encodes enough of `text` to give its first `maxTokens` tokens. Tokenising costs time in proportion to the text
 * (about 10 µs per character for Llama's BPE in JS), and only the first tokens are kept, so a multi-megabyte line
 * is tokenised by prefixes of growing length until one yields a margin of tokens past the kept ones: BPE merges
 * act on neighbours, so the cut changes nothing that far before it.
 */
function encodeBounded(tokenizer: TextTokenizer, text: string, addSpecialTokens: boolean, maxTokens: number): { ids: number[]; tokens: string[] } {
  let chars = Math.max(1024, 16 * (maxTokens + PREFIX_MARGIN_TOKENS));
  for (;;) {
    if (chars >= text.length) return tokenizer.encode(text, addSpecialTokens);
    // Never cut between the two halves of a surrogate pair.
    const cut = text.charCodeAt(chars - 1) >= 0xd800 && text.charCodeAt(chars - 1) <= 0xdbff ? chars - 1 : chars;
    const e = tokenizer.encode(text.slice(0, cut), addSpecialTokens);
    if (e.ids.length >= maxTokens + PREFIX_MARGIN_TOKENS) return e;
    chars *= 4;
  }
}
