/**
 * tokenizer.json checks before the tokenizer library sees the file: a real tokenizer passes; each kind of damage
 * is a TOKENIZER_INVALID error naming the file and the field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { MAX_TOKENIZER_DEPTH, readTokenizerJson } from "../../../../extension/core/data/tokenizerFile";
import { bundledTokenizerDir } from "../../../../extension/core/demo/tinyModel";
import { isLoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

const real = () => JSON.parse(fs.readFileSync(path.join(bundledTokenizerDir(), "tokenizer.json"), "utf8")) as Record<string, any>;

test("a real tokenizer.json (Llama 2's) and its tokenizer_config.json pass unchanged", () => {
  const file = path.join(bundledTokenizerDir(), "tokenizer.json");
  assert.deepEqual(readTokenizerJson(file, "tokenizer"), real());
  const cfg = path.join(bundledTokenizerDir(), "tokenizer_config.json");
  if (fs.existsSync(cfg)) assert.equal(typeof readTokenizerJson(cfg, "config"), "object");
});

test("each kind of damage is refused naming the file and the field", () => {
  const dir = tmpDir();
  const cases: [string, (j: Record<string, any>) => unknown, string][] = [
    ["unknown model type", (j) => ({ ...j, model: { ...j.model, type: "Magic" } }), "model.type"],
    ["string ids", (j) => ({ ...j, model: { ...j.model, vocab: { ...j.model.vocab, "<unk>": "0" } } }), "model.vocab"],
    ["a merge of unknown tokens", (j) => ({ ...j, model: { ...j.model, merges: ["zzqq xxyy", ...j.model.merges.slice(1)] } }), "model.merges"],
    ["added tokens not a list", (j) => ({ ...j, added_tokens: { id: 1 } }), "added_tokens"],
    ["a normalizer that is a string", (j) => ({ ...j, normalizer: "NFC" }), "normalizer"],
    ["no model", (j) => ({ ...j, model: null }), "model"],
    ["not an object", () => [1, 2, 3], "(root)"],
  ];
  for (const [name, damage, field] of cases) {
    const file = path.join(dir, `${name.replace(/ /g, "-")}.json`);
    fs.writeFileSync(file, JSON.stringify(damage(real())));
    assert.throws(() => readTokenizerJson(file, "tokenizer"), (e) => isLoraDropError(e) && e.code === "TOKENIZER_INVALID" && e.file === file && e.field === field, name);
  }
  const deep = path.join(dir, "deep.json");
  fs.writeFileSync(deep, `{"model":${"[".repeat(MAX_TOKENIZER_DEPTH + 5)}${"]".repeat(MAX_TOKENIZER_DEPTH + 5)}}`);
  assert.throws(() => readTokenizerJson(deep, "tokenizer"), (e) => isLoraDropError(e) && e.code === "TOKENIZER_INVALID" && /nested more than/.test(e.message));
  const latin1 = path.join(dir, "latin1.json");
  fs.writeFileSync(latin1, Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
  assert.throws(() => readTokenizerJson(latin1, "tokenizer"), (e) => isLoraDropError(e) && /not UTF-8/.test(e.message));
  assert.throws(() => readTokenizerJson(path.join(dir, "missing.json"), "tokenizer"), (e) => isLoraDropError(e) && e.code === "FILE_NOT_FOUND");
  assert.throws(() => readTokenizerJson(dir, "tokenizer"), (e) => isLoraDropError(e) && e.code === "FILE_UNREADABLE");
});
