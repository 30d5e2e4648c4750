/**
 * How token strings are shown. Tokens are raw tokenizer output: they may hold HTML-looking text, control
 * characters, bidi overrides or be very long. The panel always inserts them as text; this module makes the
 * invisible visible so a reader sees what the token really is, and keeps labels short.
 */

/** Characters that are invisible or reorder text: C0/C1 controls, zero-width and bidi format characters. */
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

/**
 * Returns the token with invisible characters shown as ⟨U+XXXX⟩ and newline/tab as ↵/⇥; an empty token
 * becomes "∅" and an all-space token shows its spaces as "␣" so it does not vanish from a label.
 */
export function displayToken(raw: string): string {
  if (raw.length === 0) return "∅";
  let text = raw
    .replace(/\n/g, "↵")
    .replace(/\r/g, "␍")
    .replace(/\t/g, "⇥")
    .replace(INVISIBLE, (ch) => `⟨U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
  if (text.trim().length === 0) text = text.replace(/ /g, "␣");
  return text;
}

/** Shortens `text` to at most `maxChars` code points, ending with "…" when cut. Never splits a surrogate pair. */
export function truncateLabel(text: string, maxChars: number): string {
  const points = Array.from(text);
  if (points.length <= maxChars) return text;
  return points.slice(0, Math.max(0, maxChars - 1)).join("") + "…";
}

/** SentencePiece's word-start mark (U+2581 "▁"): it stands for the space before a word, and is part of the token. */
export const WORD_START = "\u2581";

/** The dimmed marker the list and the column labels show for each word-start mark (like VS Code's rendered spaces). */
export const WORD_START_MARKER = "\u00b7";

/** A run of displayed token text: ordinary text, or a run of word-start marks (`wordStart`), kept verbatim in `text`. */
export interface TokenSegment {
  text: string;
  wordStart: boolean;
}

/**
 * Splits text into runs of word-start marks and runs of everything else, so a view can draw the marks dimmed (or
 * as markers) instead of as a full-width stroke. Joining the segments' text gives back the input exactly.
 */
export function wordStartSegments(text: string): TokenSegment[] {
  const out: TokenSegment[] = [];
  for (const run of text.match(/\u2581+|[^\u2581]+/gu) ?? []) out.push({ text: run, wordStart: run.startsWith(WORD_START) });
  return out;
}

/** A one-line preview of a sequence for the sequence list: its displayed tokens joined, shortened. */
export function sequencePreview(tokens: readonly string[], maxChars = 80): string {
  let out = "";
  for (const t of tokens) {
    out += displayToken(t);
    if (out.length > maxChars * 2) break;
  }
  return truncateLabel(out, maxChars);
}

/** Indices of sequences matching `query`: "#12" matches index 12, otherwise a case-insensitive substring of the text. */
export function filterSequences(sequences: readonly { tokens: readonly string[]; example: number }[], query: string): number[] {
  const q = query.trim().toLowerCase();
  const all = sequences.map((_, i) => i);
  if (q.length === 0) return all;
  const byIndex = /^#(\d+)$/.exec(q);
  if (byIndex) {
    const n = Number(byIndex[1]);
    return n < sequences.length ? [n] : [];
  }
  // Word-start marks also match a typed space, so "the cat" finds "▁The▁cat".
  return all.filter((i) => {
    const text = (sequences[i] as { tokens: readonly string[] }).tokens.join("").toLowerCase();
    return text.includes(q) || text.replace(/\u2581/g, " ").includes(q);
  });
}
