/**
 * The one piece of JSON lexing the linear-time scanners (jsonDuplicates.ts, jsonIntegers.ts) share: where a string
 * literal ends.
 */

/** The index of the quote that closes the string opening at `open` (`text[open]` is `"`), escapes skipped. */
export function closingQuote(text: string, open: number): number {
  let j = open + 1;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === 0x5c) j += 2;
    else if (d === 0x22) break;
    else j++;
  }
  return j;
}
