/**
 * The limits the hostile corpus relies on, checked against independent computations: bounded tokenisation gives
 * the same first tokens as tokenising the whole text; the streamed dataset reader agrees with a plain split of the
 * file across chunk boundaries, CRLF, BOM and multi-byte characters; the line limit is exact; NaN/Inf weights are
 * read as stored (as the safetensors reference does) and a profile over them fails with NUMERICAL naming the tensor.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng } from "../../extension/core/util/random";
import { LoraDropError } from "../../extension/core/util/errors";
import { readDataset, tokenizeExamples, MAX_LINE_BYTES, RawExample } from "../../extension/core/data/dataset";
import { TextTokenizer } from "../../extension/core/data/tokenize";
import { bundledTokenizerDir } from "../../extension/core/demo/tinyModel";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32 } from "../../extension/core/io/safetensors";
import { profileAdapter } from "../../extension/core/importance/profile";
import { peftKey } from "../../extension/core/adapter/peftAdapter";
import { makeFixture, tmpDir } from "../helpers";
import { poke } from "./corpus";

const dir = tmpDir("lora-drop-limits-");

function randomText(rng: Rng, n: number, alphabet: "words" | "unicode" | "letters"): string {
  const words = ["the", "river", "committee", "paints", "seven", "stones", "quietly", "near", "a", "broken", "clock", "1984", "—"];
  let s = "";
  while (s.length < n) {
    if (alphabet === "words") s += `${words[rng.int(words.length)]}${rng.next() < 0.1 ? ". " : " "}`;
    else if (alphabet === "letters") s += String.fromCharCode(97 + rng.int(26));
    else {
      const k = rng.int(5);
      if (k === 0) s += String.fromCodePoint(0x4e00 + rng.int(2000)); // CJK
      else if (k === 1) s += String.fromCodePoint(0x1f600 + rng.int(60)); // emoji (a surrogate pair)
      else if (k === 2) s += "e\u0301"; // a combining accent
      else if (k === 3) s += " ";
      else s += String.fromCharCode(65 + rng.int(58));
    }
  }
  return s;
}

test("a long line tokenised by prefixes gives exactly the first tokens of the whole text", () => {
  const d = bundledTokenizerDir();
  const tok = TextTokenizer.load(path.join(d, "tokenizer.json"), path.join(d, "tokenizer_config.json"));
  const rng = new Rng(11);
  const texts = [randomText(rng, 30_000, "words"), randomText(rng, 8_000, "unicode"), randomText(rng, 12_000, "letters"), "7".repeat(9_000)];
  for (const text of texts) {
    const whole = tok.encode(text, true).ids;
    for (const max of [8, 50, 128]) {
      const ex: RawExample = { line: 1, text, fields: {} };
      const [got] = tokenizeExamples("t.jsonl", [ex], tok, 32000, max);
      assert.deepEqual(got!.ids, whole.slice(0, max), `${JSON.stringify(text.slice(0, 20))}… at max ${max}`);
    }
  }
  const prompt = randomText(rng, 20_000, "words");
  const completion = randomText(rng, 20_000, "unicode");
  for (const [p, c] of [[prompt, completion], ["Q: short?\nA:", completion]] as const) {
    const ids = [...tok.encode(p, true).ids, ...tok.encode(c, false).ids];
    const promptLen = tok.encode(p, true).ids.length;
    const [got] = tokenizeExamples("t.jsonl", [{ line: 1, prompt: p, completion: c, fields: {} }], tok, 32000, 64);
    assert.deepEqual(got!.ids, ids.slice(0, 64));
    assert.deepEqual(got!.lossMask, ids.slice(0, 64).map((_, t) => t >= promptLen && t > 0));
  }
});

test("the streamed reader agrees with a plain split across chunk boundaries, CRLF, BOM and multi-byte characters", () => {
  const rng = new Rng(12);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < 2.5 * 1024 * 1024) {
    const line = rng.next() < 0.1 ? "   " : JSON.stringify({ text: randomText(rng, 1 + rng.int(60_000), "unicode"), n: parts.length });
    parts.push(line + (rng.next() < 0.3 ? "\r\n" : "\n"));
    bytes += Buffer.byteLength(parts[parts.length - 1]!);
  }
  const file = path.join(dir, "stream.jsonl");
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(parts.join("").replace(/\n$/, ""))]));
  // Reference: the whole file as one string (the BOM dropped by the decoder), split into lines.
  const expected = new TextDecoder().decode(fs.readFileSync(file)).split(/\r?\n/)
    .map((l, i) => ({ line: i + 1, l }))
    .filter(({ l }) => l.trim() !== "")
    .map(({ line, l }) => ({ line, text: (JSON.parse(l) as { text: string }).text }));
  const got = readDataset(file);
  assert.deepEqual(got.map((e) => ({ line: e.line, text: e.text })), expected);
  assert.deepEqual(readDataset(file, { maxExamples: 5 }).map((e) => e.text), expected.slice(0, 5).map((e) => e.text));
});

test("maxExamples stops before a bad line; without it the bad line is reported", () => {
  const file = path.join(dir, "late-error.jsonl");
  fs.writeFileSync(file, `${JSON.stringify({ text: "a" })}\n${JSON.stringify({ text: "b" })}\n{"text": 5}\n`);
  assert.equal(readDataset(file, { maxExamples: 2 }).length, 2);
  assert.throws(() => readDataset(file), (e: unknown) => e instanceof LoraDropError && e.code === "DATASET_INVALID" && e.message.includes("line 3"));
});

test("a line of exactly MAX_LINE_BYTES is read and one byte more is refused", () => {
  const ok = path.join(dir, "max.txt");
  fs.writeFileSync(ok, `first\n${"x".repeat(MAX_LINE_BYTES)}\n`);
  assert.equal(readDataset(ok)[1]!.text!.length, MAX_LINE_BYTES);
  const bad = path.join(dir, "over.txt");
  fs.writeFileSync(bad, `first\n${"x".repeat(MAX_LINE_BYTES + 1)}\n`);
  assert.throws(() => readDataset(bad), (e: unknown) => e instanceof LoraDropError && e.code === "DATASET_INVALID" && e.message.includes("line 2") && e.message.includes(bad));
});

test("NaN and Inf weights are read as stored, in every float dtype (as the safetensors reference does)", () => {
  const values = Float32Array.from([NaN, Infinity, -Infinity, 1.5, -0]);
  const file = path.join(dir, "nonfinite.safetensors");
  fs.writeFileSync(file, encodeSafetensors(["F32", "F16", "BF16"].map((dtype) => ({ name: dtype, dtype: dtype as "F32", shape: [5], data: values }))));
  const idx = readSafetensorsIndex(file);
  for (const dtype of ["F32", "F16", "BF16"]) {
    const got = readTensorF32(idx, dtype).data;
    assert.ok(Number.isNaN(got[0]), dtype);
    assert.deepEqual([...got.subarray(1)], [Infinity, -Infinity, 1.5, -0], dtype);
  }
});

test("a profile over a NaN weight fails with NUMERICAL naming the layer, the module and the tensor", async () => {
  const fx = makeFixture({ tokenizer: false, numLayers: 3, hiddenSize: 16, numHeads: 4, numKvHeads: 2, intermediateSize: 32, vocabSize: 64 }, { targets: ["q_proj", "v_proj"] });
  const ids = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(ids, `${JSON.stringify({ input_ids: [1, 5, 9, 3] })}\n`);
  const st = path.join(fx.adapterDir, "adapter_model.safetensors");
  const key = peftKey(1, "v_proj", "B");
  fs.writeFileSync(st, poke(fs.readFileSync(st), key, NaN, new Rng(3)).bytes);
  for (const criterion of ["weight", "output"] as const) {
    await assert.rejects(profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: ids, criterion, device: "cpu", threads: 1 }), (e: unknown) => {
      assert.ok(e instanceof LoraDropError, String(e));
      assert.equal(e.code, "NUMERICAL", e.message);
      assert.match(e.message, /layer 1 v_proj/);
      assert.ok(e.message.includes(st), e.message);
      assert.equal(e.field, key);
      return true;
    });
  }
});
