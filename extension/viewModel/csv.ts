/**
 * CSV export of the panel's numbers. RFC 4180 quoting; numbers written with JavaScript's shortest
 * round-trip form so a reader gets back the exact floats the panel shows.
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import { ALL_MODULES, heatmapGrid } from "./heatmapData";
import { layerStatus, selectForProfile } from "./layerSelection";
import type { PruneMode } from "../core/adapter/dropRecord";

/**
 * Quotes one field. Text starting with = + - @ or a tab/CR is prefixed with an apostrophe, because
 * spreadsheets would run it as a formula (CSV injection); token strings are untrusted data.
 */
export function csvField(value: string | number | boolean): string {
  if (typeof value !== "string") return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) || safe !== value ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Joins rows of fields into CSV text with CRLF line ends (RFC 4180). */
export function csvText(rows: readonly (readonly (string | number | boolean)[])[]): string {
  return rows.map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

/** The heatmap shown for (module, sequence) in long form: one line per layer and token. */
export function heatmapCsv(profile: ProfileFile, module: string, sequence: number): string {
  const grid = heatmapGrid(profile, module, sequence);
  const seq = profile.sequences[sequence];
  const rows: (string | number | boolean)[][] = [["layer", "module", "sequence", "token_index", "token_id", "token", "special", "value"]];
  if (grid && seq) {
    const moduleName = module === ALL_MODULES ? "all" : module;
    for (let r = 0; r < grid.rows; r++) {
      for (let c = 0; c < grid.cols; c++) {
        rows.push([profile.layers[r] as number, moduleName, sequence, c, seq.ids[c] as number, seq.tokens[c] as string, seq.special[c] as boolean, grid.values[r * grid.cols + c] as number]);
      }
    }
  }
  return csvText(rows);
}

/** Per-layer importance, rank, cumulative importance (renormalised over LoRA layers) and LoRA-drop's decision at `threshold`. */
export function importanceCsv(profile: ProfileFile, threshold: number, mode: PruneMode): string {
  const importance = profile.importance.per_layer;
  const selection = selectForProfile(profile, threshold);
  const status = layerStatus(selection);
  const rank: number[] = [];
  selection.order.forEach((layer, k) => (rank[layer] = k));
  const header = ["layer", "importance", "importance_raw", "rank", "cumulative_at_rank", "decision", ...profile.modules.map((m) => `params_${m}`)];
  const rows: (string | number)[][] = [header];
  importance.forEach((value, i) => {
    // Layers without a LoRA take no part in the ranking, so they have no rank or cumulative value.
    const k = rank[i];
    rows.push([
      profile.layers[i] as number,
      value,
      profile.importance.per_layer_raw[i] as number,
      k === undefined ? "" : k + 1,
      k === undefined ? "" : (selection.cumulative[k] as number),
      status[i] === "kept" ? "kept" : status[i] === "none" ? "no LoRA" : mode === "share" ? "shared" : "dropped",
      ...profile.modules.map((m) => profile.adapter.params[m]?.[i] ?? 0),
    ]);
  });
  return csvText(rows);
}
