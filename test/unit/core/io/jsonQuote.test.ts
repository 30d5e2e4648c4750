/** Where a JSON string literal ends, escapes included. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closingQuote } from "../../../../extension/core/io/jsonQuote";

test("closingQuote finds the quote that ends the string, skipping escaped quotes and backslashes", () => {
  const text = String.raw`{"a\"b\\": "c"}`;
  const end = closingQuote(text, 1);
  assert.equal(text.slice(1, end + 1), String.raw`"a\"b\\"`);
  assert.deepEqual(JSON.parse(text.slice(1, end + 1)), 'a"b\\');
  assert.equal(closingQuote(text, text.indexOf('"c"')), text.indexOf('"c"') + 2);
  assert.equal(closingQuote('"open', 0), 5, "an unterminated string ends at the end of the text");
});
