/**
 * Patterns that come from files: invalid ones are typed errors naming their origin, and a catastrophically
 * backtracking one is stopped by the time limit instead of hanging the process.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compileUntrustedPattern, PATTERN_TIME_LIMIT_MS, untrustedPatternMatches } from "../../../../extension/core/util/safeRegex";
import { isLoraDropError } from "../../../../extension/core/util/errors";

const origin = { code: "ADAPTER_INVALID" as const, file: "/a/adapter_config.json", field: "target_modules" };

test("a valid pattern matches as RegExp.test does", () => {
  const source = String.raw`.*\.(q_proj|v_proj)$`;
  compileUntrustedPattern(source, origin);
  for (const name of ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "v_proj", "q_projx"]) {
    assert.equal(untrustedPatternMatches(source, name, origin), new RegExp(source).test(name), name);
  }
});

test("an invalid pattern is an error with the origin's code, file and field", () => {
  assert.throws(() => compileUntrustedPattern("(unclosed", origin),
    (e) => isLoraDropError(e) && e.code === "ADAPTER_INVALID" && e.file === origin.file && e.field === "target_modules" && /invalid regular expression/.test(e.message));
});

test("catastrophic backtracking stops at the time limit with a typed error naming the file that held the pattern", () => {
  const source = "(a+)+$";
  const later = { ...origin, file: "/b/adapter_config.json", field: "rank_pattern" };
  compileUntrustedPattern(source, origin);
  compileUntrustedPattern(source, later);
  const started = Date.now();
  assert.throws(() => untrustedPatternMatches(source, `${"a".repeat(40)}b`, origin),
    (e) => isLoraDropError(e) && e.file === later.file && e.field === "rank_pattern" && /catastrophic backtracking/.test(e.message));
  assert.ok(Date.now() - started < 20 * PATTERN_TIME_LIMIT_MS, "stopped near the time limit");
  assert.equal(untrustedPatternMatches(source, "aaa", origin), true, "the context is usable afterwards");
});
