/**
 * Integers written as floats in JSON text. JSON.parse reads `16.0`, `1.6e1` and `16` as the same number, but the
 * safetensors reference (serde, u64 fields) refuses the first two in a header's `shape` and `data_offsets`: a header
 * that only this reader accepted would be a file no other tool opens. Readers call this on text JSON.parse has
 * already accepted.
 */
import { closingQuote } from "./jsonQuote";

/** A number token that is not a plain non-negative integer, with the object keys that lead to it. */
export interface NonIntegerNumber {
  token: string;
  /** Keys of the enclosing objects, outermost first (array levels are skipped). */
  path: string[];
}

/** Finds the first number written with a fraction, an exponent or a sign. Linear time; `text` must be valid JSON. */
export function findNonIntegerNumber(text: string): NonIntegerNumber | undefined {
  // One entry per open container: the current key of an object, or null for an array.
  const stack: (string | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const j = closingQuote(text, i);
      if (expectKey && stack.length > 0) {
        const raw = text.slice(i, j + 1);
        stack[stack.length - 1] = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push(c === 0x7b ? "" : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j]!)) j++;
      const token = text.slice(i, j);
      if (!/^\d+$/.test(token)) return { token, path: stack.filter((k): k is string => k !== null) };
      i = j - 1;
    }
  }
  return undefined;
}
