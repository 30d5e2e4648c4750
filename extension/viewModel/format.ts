/** Number formatting for labels and readouts; pure so every view formats the same way. */
import { profileEngine, profilePrecision, profileRunLabel } from "../core/importance/profileSchema";
import type { Precision } from "../core/quant/precision";
import type { EngineChoice } from "../core/torch/engineChoice";

/** The exact value as JavaScript prints it (shortest form that round-trips): used in tooltips and CSV. */
export function exactValue(value: number): string {
  return String(value);
}

/** A compact value for axes and legends: 3 significant digits, exponent form for very small or large numbers. */
export function compactValue(value: number): string {
  if (value === 0) return "0";
  const a = Math.abs(value);
  if (a >= 1e-3 && a < 1e5) return String(Number(value.toPrecision(3)));
  return value.toExponential(1).replace("e+", "e");
}

/** An integer with thousands separators ("1,234,567"), independent of the machine's locale. */
export function groupedInteger(value: number): string {
  const sign = value < 0 ? "-" : "";
  return sign + Math.round(Math.abs(value)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A fraction as a percentage with one decimal ("37.5%"). */
export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** A byte count in binary units: "3.34 GiB", "512 MiB". */
export function bytesText(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u === 0 ? v : v.toFixed(2)} ${units[u]}`;
}

/**
 * How the profile ran: "onnx cpu · int8 · 1,234 tok/s · peak 3.34 GiB", "torch cuda bfloat16 · …" (the onnx
 * engine's precision, fp32 for files older than the field; the torch engine's dtype is in its label; peak memory
 * only when recorded).
 */
export function runSummary(p: { device: string; engine?: EngineChoice; precision?: Precision; timing: { tokens_per_second: number; peak_rss_bytes?: number } }): string {
  const parts = [profileRunLabel(p), ...(profileEngine(p) === "onnx" ? [profilePrecision(p)] : []), `${groupedInteger(Math.round(p.timing.tokens_per_second))} tok/s`];
  if (p.timing.peak_rss_bytes !== undefined && p.timing.peak_rss_bytes > 0) parts.push(`peak ${bytesText(p.timing.peak_rss_bytes)}`);
  return parts.join(" · ");
}
