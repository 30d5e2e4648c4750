/**
 * Command arguments as VS Code passes them: from the palette, the Explorer selection, or an options object.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseInvocation, parseThresholdInput, profileArgs, pruneArgs } from "../../../extension/host/commandArgs";
import { UserError } from "../../../extension/host/errorText";

test("command arguments: palette, Explorer selection, options object", () => {
  assert.deepEqual(parseInvocation([]), { resources: [], options: {} });
  const uri = (p: string) => ({ scheme: "file", fsPath: p });
  assert.deepEqual(parseInvocation([uri("/a"), [uri("/a"), uri("/b")]]), { resources: ["/a", "/b"], options: {} });
  assert.deepEqual(parseInvocation([{ adapter: "/x" }]).options, { adapter: "/x" });
  assert.throws(() => parseInvocation([42]), UserError);
  assert.deepEqual(pruneArgs({ adapter: "/x", threshold: 0.5, mode: "drop", overwrite: true }), { adapter: "/x", threshold: 0.5, mode: "drop", overwrite: true });
  assert.throws(() => pruneArgs({ threshold: 0 }), /Invalid option threshold/);
  assert.throws(() => pruneArgs({ mode: "keep" }), /Invalid option mode/);
  assert.throws(() => profileArgs({ maxTokens: -3 }), /Invalid option maxTokens/);
  assert.equal(parseThresholdInput(" 0,85 "), 0.85);
  assert.equal(parseThresholdInput("1"), 1);
  for (const bad of ["", "0", "1.01", "abc", "-0.5"]) assert.equal(typeof parseThresholdInput(bad), "string", bad);
});
