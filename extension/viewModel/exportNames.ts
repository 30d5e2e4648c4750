/** Suggested file names for exports, derived from the profile's path but always a safe plain base name. */
import type { ExportFormat } from "./protocol";

/**
 * Builds "<profile stem>-<parts…>.<format>": the stem is the source file's base name without extension;
 * every character outside [A-Za-z0-9_-] becomes "_", runs collapse, and the result is at most 120 characters
 * so it always passes the protocol's isSafeExportName.
 */
export function exportFileName(sourcePath: string, parts: readonly (string | number)[], format: ExportFormat): string {
  const base = sourcePath.split(/[/\\]/).pop() ?? "";
  const stem = base.replace(/\.[^.]*$/, "");
  const words = [stem || "lora-drop", ...parts.map(String)].map(sanitize).filter((w) => w.length > 0);
  const name = words.join("-").slice(0, 120 - format.length - 1).replace(/^[-_]+/, "");
  return `${name || "lora-drop"}.${format}`;
}

function sanitize(word: string): string {
  return word.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/_+/g, "_").replace(/^_+|_+$/g, "");
}
