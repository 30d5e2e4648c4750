/**
 * Regular expressions that come from files (PEFT's `target_modules`, `rank_pattern`, `alpha_pattern`). A pattern
 * that does not compile must be a clear error naming the file, not a SyntaxError; and a pattern with catastrophic
 * backtracking, such as `(a+)+$`, must not hang the process, so every match runs under a time limit (a `vm`
 * script with `timeout`, the one way to interrupt a running regular expression in Node).
 */
import * as vm from "node:vm";
import { LoraDropError, ErrorCode, describeValue } from "./errors";

/** Longest a single match of an untrusted pattern may take. Legitimate module-name patterns take microseconds. */
export const PATTERN_TIME_LIMIT_MS = 200;

/** Where an untrusted pattern came from, for error messages. */
export interface PatternOrigin {
  code: ErrorCode;
  file: string;
  field: string;
}

interface Compiled {
  re: RegExp;
  origin: PatternOrigin;
}

// Compiled patterns by source. A config's patterns are compiled (and their origin recorded) when it is parsed, and
// matched later by code that no longer knows the file; the cache is small and cleared when it grows.
const compiled = new Map<string, Compiled>();
const MAX_CACHED = 512;

/** Compiles `source`, or throws a LoraDropError (origin's code, file and field) saying why it is not valid. */
export function compileUntrustedPattern(source: string, origin: PatternOrigin): RegExp {
  const hit = compiled.get(source);
  if (hit) {
    // The config parsed last is the one about to be used: its file is the one to name.
    hit.origin = origin;
    return hit.re;
  }
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    throw new LoraDropError(origin.code, `${origin.field} holds an invalid regular expression ${describeValue(source)} (${(e as Error).message})`, origin.file, origin.field);
  }
  if (compiled.size >= MAX_CACHED) compiled.clear();
  compiled.set(source, { re, origin });
  return re;
}

const context = vm.createContext({ re: /$^/, s: "" });
const script = new vm.Script("re.test(s)");

/**
 * Whether `source` matches `text`, under PATTERN_TIME_LIMIT_MS. Throws a LoraDropError (the code, file and field
 * the pattern was compiled with; `fallback` when it was not) when the pattern is invalid or too slow.
 */
export function untrustedPatternMatches(source: string, text: string, fallback: PatternOrigin): boolean {
  const hit = compiled.get(source);
  const re = hit?.re ?? compileUntrustedPattern(source, fallback);
  const origin = hit?.origin ?? fallback;
  context.re = re;
  context.s = text;
  try {
    return script.runInContext(context, { timeout: PATTERN_TIME_LIMIT_MS }) === true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_SCRIPT_EXECUTION_TIMEOUT") throw e;
    throw new LoraDropError(origin.code,
      `${origin.field} pattern ${describeValue(source)} takes more than ${PATTERN_TIME_LIMIT_MS} ms to match ${describeValue(text)} (catastrophic backtracking); simplify the pattern`,
      origin.file, origin.field);
  } finally {
    context.re = /$^/;
    context.s = "";
  }
}

/** Returned by runWithTimeLimit when `fn` ran out of time. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

const callContext = vm.createContext({ fn: null as null | (() => unknown), result: undefined as unknown });
const callScript = new vm.Script("result = fn()");

/**
 * Runs `fn` synchronously under a time limit and returns its result, or TIMED_OUT when it ran longer (it is then
 * interrupted, wherever it was: inside a regular expression, a library's loop or a string replace). The same
 * mechanism as untrustedPatternMatches, for code that runs untrusted patterns itself (the tokenizer library).
 * Costs about 0.1 ms per call (a watchdog thread).
 */
export function runWithTimeLimit<T>(fn: () => T, ms: number): T | typeof TIMED_OUT {
  callContext.fn = fn;
  try {
    callScript.runInContext(callContext, { timeout: ms });
    return callContext.result as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return TIMED_OUT;
    throw e;
  } finally {
    callContext.fn = null;
    callContext.result = undefined;
  }
}
