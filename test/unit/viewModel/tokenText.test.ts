/**
 * Token text as displayed: invisible characters shown, filtering, word starts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { displayToken, filterSequences, truncateLabel, wordStartSegments } from "../../../extension/viewModel/tokenText";
import { HOSTILE_TOKENS } from "./fixtures";

test("displayToken makes invisible characters visible and leaves markup-looking text intact", () => {
  assert.equal(displayToken(HOSTILE_TOKENS.img), HOSTILE_TOKENS.img);
  assert.equal(displayToken(HOSTILE_TOKENS.bidi), "abc⟨U+202E⟩evil⟨U+202C⟩def");
  assert.equal(displayToken("a\nb\t"), "a↵b⇥");
  assert.equal(displayToken("  "), "␣␣");
  assert.equal(displayToken(""), "∅");
  assert.equal(truncateLabel("ab😀cd", 4), "ab😀…");
  assert.equal(truncateLabel("abc", 3), "abc");
});

test("filterSequences matches text case-insensitively and #index exactly", () => {
  const seqs = [{ tokens: ["Hello", " world"], example: 0 }, { tokens: ["foo"], example: 1 }, { tokens: ["WORLD"], example: 2 }];
  assert.deepEqual(filterSequences(seqs, "world"), [0, 2]);
  assert.deepEqual(filterSequences(seqs, "#1"), [1]);
  assert.deepEqual(filterSequences(seqs, "#9"), []);
  assert.deepEqual(filterSequences(seqs, "  "), [0, 1, 2]);
});

test("word-start marks split into their own runs and join back to the exact text; the filter matches them as spaces", () => {
  assert.deepEqual(wordStartSegments("\u2581The"), [{ text: "\u2581", wordStart: true }, { text: "The", wordStart: false }]);
  assert.deepEqual(wordStartSegments("a\u2581\u2581b\u2581"), [
    { text: "a", wordStart: false }, { text: "\u2581\u2581", wordStart: true }, { text: "b", wordStart: false }, { text: "\u2581", wordStart: true },
  ]);
  assert.deepEqual(wordStartSegments(""), []);
  fc.assert(fc.property(fc.array(fc.constantFrom("\u2581", "a", "😀", " ", "_", "\u202e")).map((xs) => xs.join("")), (text) => {
    const segs = wordStartSegments(text);
    assert.equal(segs.map((x) => x.text).join(""), text);
    for (const seg of segs) assert.equal(seg.wordStart, /^\u2581+$/.test(seg.text));
  }));
  const seqs = [{ tokens: ["<s>", "\u2581The", "\u2581cat"], example: 0 }, { tokens: ["<s>", "\u2581The", "cat"], example: 1 }];
  assert.deepEqual(filterSequences(seqs, "the cat"), [0]);
  assert.deepEqual(filterSequences(seqs, "thecat"), [1]);
});
