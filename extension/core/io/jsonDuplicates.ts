/**
 * Duplicate keys in JSON text. JSON.parse silently keeps the last of two equal keys, so a safetensors header that
 * names one tensor twice would be read as if the first entry did not exist; readers call this on text JSON.parse
 * has already accepted to refuse such files instead.
 */
import { closingQuote } from "./jsonQuote";

/** A key that appears twice in one object. */
export interface DuplicateKey {
  key: string;
  /** Keys of the enclosing objects from the top level down ([] for a top-level key). */
  path: string[];
}

/**
 * Finds the first key that appears twice in one object of `text`, looking only at objects nested at most
 * `maxDepth` levels deep (1: the top-level object). `text` must be valid JSON. Linear time; memory grows with the
 * number of keys seen, never with the nesting depth, so a hostile 100 MB header of brackets costs nothing.
 */
export function findDuplicateKey(text: string, maxDepth = 2): DuplicateKey | undefined {
  // Per tracked level: the keys seen so far (objects) or null (arrays); deeper levels are only counted.
  const levels: (Set<string> | null)[] = [];
  const path: string[] = [];
  let depth = 0;
  let expectKey = false;
  let lastKey = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const j = closingQuote(text, i);
      if (expectKey && depth <= maxDepth) {
        const raw = text.slice(i, j + 1);
        // Escapes make "a" and "\u0061" the same key, so decode them before comparing.
        const key = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        const seen = levels[depth - 1]!;
        if (seen.has(key)) return { key, path: path.slice(0, depth - 1) };
        seen.add(key);
        lastKey = key;
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth <= maxDepth) {
        levels[depth - 1] = c === 0x7b ? new Set() : null;
        // The key that holds this container names it in the path of any duplicate found inside.
        if (depth >= 2) path[depth - 2] = lastKey;
      }
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = depth >= 1 && depth <= maxDepth && levels[depth - 1] !== null;
    }
  }
  return undefined;
}
