/**
 * Tokenizer budgets: the real Llama 2 tokenizer loads as before; a pattern that backtracks on the probe texts, a
 * normalizer that can grow text past the bound and a long inserted text are refused at load time with
 * TOKENIZER_INVALID naming the field; a pattern that backtracks only on some later text stops that encode at
 * ENCODE_TIME_LIMIT_MS instead of hanging.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { TextTokenizer } from "../../../../extension/core/data/tokenize";
import { checkTokenizerBudget, ENCODE_TIME_LIMIT_MS, MAX_TEXT_EXPANSION } from "../../../../extension/core/data/tokenizerBudget";
import { bundledTokenizerDir } from "../../../../extension/core/demo/tinyModel";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { runWithTimeLimit, TIMED_OUT } from "../../../../extension/core/util/safeRegex";
import { tmpDir } from "../../../helpers";

const dir = tmpDir("lora-drop-tokbudget-");
const real = JSON.parse(fs.readFileSync(path.join(bundledTokenizerDir(), "tokenizer.json"), "utf8")) as Record<string, unknown>;

function refusedAt(edit: (j: Record<string, unknown>) => void, field: string, re: RegExp): void {
  const j = structuredClone(real);
  edit(j);
  const t0 = Date.now();
  assert.throws(() => checkTokenizerBudget("t.json", j), (e: unknown) => e instanceof LoraDropError && e.code === "TOKENIZER_INVALID" && e.field === field && re.test(e.message));
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
}

test("runWithTimeLimit returns the value, or TIMED_OUT when it runs over", () => {
  assert.equal(runWithTimeLimit(() => 6 * 7, 100), 42);
  const t0 = Date.now();
  assert.equal(runWithTimeLimit(() => /(a+)+$/.test(`${"a".repeat(40)}!`), 50), TIMED_OUT);
  assert.ok(Date.now() - t0 < 1000);
  assert.throws(() => runWithTimeLimit(() => { throw new RangeError("inner"); }, 100), /inner/);
});

test("the real Llama 2 tokenizer passes, and the guarded encode gives the library's own ids", () => {
  checkTokenizerBudget("t.json", real);
  const tok = TextTokenizer.load(path.join(bundledTokenizerDir(), "tokenizer.json"));
  const text = "Hello world, it's 2024: ünïcödé 中文.";
  assert.deepEqual(tok.encode(text, true).ids, new Tokenizer(real, {}).encode(text, { add_special_tokens: true }).ids);
});

test("backtracking patterns, unbounded growth and long inserted texts are refused at load time, naming the step", () => {
  refusedAt((j) => { j.pre_tokenizer = { type: "Split", pattern: { Regex: "(x+)+$" }, behavior: "Isolated", invert: false }; }, "pre_tokenizer.pattern", /catastrophic backtracking/);
  refusedAt((j) => { j.normalizer = { type: "Sequence", normalizers: [{ type: "Lowercase" }, { type: "Replace", pattern: { Regex: "(\\w+\\s?)+$" }, content: "" }] }; }, "normalizer[1].pattern", /Replace pattern/);
  refusedAt((j) => { j.normalizer = { type: "Sequence", normalizers: Array.from({ length: 7 }, () => ({ type: "Replace", pattern: { String: "a" }, content: "aa" })) }; }, "normalizer",
    new RegExp(`up to 128 times longer; at most ${MAX_TEXT_EXPANSION}`));
  refusedAt((j) => { j.normalizer = { type: "Replace", pattern: { Regex: "" }, content: "z".repeat(64) }; }, "normalizer", /up to 65 times longer/);
  refusedAt((j) => { j.normalizer = { type: "Prepend", prepend: "p".repeat(300) }; }, "normalizer.prepend", /inserts a text of 300 characters/);
  // Six doublings (64) are still within the bound: the limit is the product, not the number of steps.
  const j = structuredClone(real);
  j.normalizer = { type: "Sequence", normalizers: Array.from({ length: 6 }, () => ({ type: "Replace", pattern: { String: "a" }, content: "aa" })) };
  checkTokenizerBudget("t.json", j);
});

test("a pattern that backtracks only on a later text stops that encode with TOKENIZER_INVALID", () => {
  const j = structuredClone(real);
  // Runs of one character (the probes) match fast; "abab…ab!" backtracks exponentially.
  j.pre_tokenizer = { type: "Split", pattern: { Regex: "((ab)+)+$" }, behavior: "Isolated", invert: false };
  const file = path.join(dir, "tokenizer.json");
  fs.writeFileSync(file, JSON.stringify(j));
  const tok = TextTokenizer.load(file);
  const t0 = Date.now();
  assert.throws(() => tok.encode(`${"ab".repeat(30)}!`, true), (e: unknown) => e instanceof LoraDropError && e.code === "TOKENIZER_INVALID" && e.file === file && /took more than/.test(e.message));
  assert.ok(Date.now() - t0 < ENCODE_TIME_LIMIT_MS + 3000);
});
