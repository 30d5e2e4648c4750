/**
 * Small runtime type checks shared by the protocol validators. DOM-free and vscode-free so both the host
 * and the webview (and Node unit tests) can use them.
 */

/** A plain object (not null, not an array) whose fields can be read by name. */
export type Fields = Record<string, unknown>;

/** True for a non-null, non-array object. */
export function isObject(x: unknown): x is Fields {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** True for a finite number (NaN and ±Infinity are rejected: JSON cannot carry them and charts break on them). */
export function isFiniteNumber(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

/** True for a finite number ≥ 0. */
export function isNonNegative(x: unknown): x is number {
  return isFiniteNumber(x) && x >= 0;
}

/** True for a safe integer ≥ 0. */
export function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/** True for a string of at most `maxLength` UTF-16 code units. */
export function isBoundedString(x: unknown, maxLength: number): x is string {
  return typeof x === "string" && x.length <= maxLength;
}

/** True for an array whose every element passes `check`. */
export function isArrayOf<T>(x: unknown, check: (item: unknown) => item is T): x is T[] {
  return Array.isArray(x) && x.every((item) => check(item));
}

/** True for an array of exactly `length` elements that all pass `check`. */
export function isArrayOfLength<T>(x: unknown, length: number, check: (item: unknown) => item is T): x is T[] {
  return Array.isArray(x) && x.length === length && x.every((item) => check(item));
}

/** True for a string. */
export function isString(x: unknown): x is string {
  return typeof x === "string";
}

/** True for a boolean. */
export function isBoolean(x: unknown): x is boolean {
  return typeof x === "boolean";
}

/** True when `x` is one of the listed literal values. */
export function isOneOf<T extends string>(x: unknown, values: readonly T[]): x is T {
  return typeof x === "string" && (values as readonly string[]).includes(x);
}
