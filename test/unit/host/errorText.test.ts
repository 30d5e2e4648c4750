/**
 * Errors in the user's words, after crossing the process boundary.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { describeError, UserError } from "../../../extension/host/errorText";
import { CancelledError, deserializeError, LoraDropError, serializeError } from "../../../extension/core/util/errors";

test("errors: engine errors keep code, file and field across the process boundary; cancellation is not an error", () => {
  const e = new LoraDropError("ADAPTER_INVALID", "r must be a positive integer", "/w/ad/adapter_config.json", "r");
  const back = deserializeError(JSON.parse(JSON.stringify(serializeError(e))));
  assert.ok(back instanceof LoraDropError);
  assert.equal(back.message, e.message);
  assert.equal((back as LoraDropError).code, "ADAPTER_INVALID");
  assert.equal((back as LoraDropError).file, "/w/ad/adapter_config.json");
  const d = describeError("Prune adapter", back);
  assert.equal(d.message, "Prune adapter failed: /w/ad/adapter_config.json: r must be a positive integer (field r)");
  assert.equal(d.cancelled, false);
  assert.equal(describeError("Prune adapter", back, (f) => path.relative("/w", f)).message, "Prune adapter failed: ad/adapter_config.json: r must be a positive integer (field r)");
  assert.equal(describeError("Profile", deserializeError(serializeError(new CancelledError("profile")))).cancelled, true);
  assert.equal(describeError("Open profile", new UserError("Open a folder first.")).message, "Open profile: Open a folder first.");
  const bug = describeError("Train", new TypeError("x is undefined"));
  assert.match(bug.detail, /TypeError: x is undefined\n\s+at /, "a bug keeps its stack for the log");
});
