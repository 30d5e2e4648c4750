/**
 * The numbers behind the heatmap: one row per layer, one column per token of a sequence, for one module or
 * summed over all modules. Kept in a flat Float64Array so 80 layers × 4096 tokens stays cheap to redraw.
 */
import type { ProfileFile } from "../core/importance/profileSchema";

/** The module selector's value meaning "sum over all target modules". */
export const ALL_MODULES = "*";

/** A rows × cols grid of LoRA output magnitudes, row-major. */
export interface HeatmapGrid {
  rows: number;
  cols: number;
  /** values[row * cols + col]. */
  values: Float64Array;
}

/**
 * Builds the grid for `module` (or ALL_MODULES) and sequence index `sequence`. The all-modules sum adds the
 * modules in the profile's order starting from 0, so the tooltip shows the same float a reader would compute.
 * Returns undefined when the profile carries no per-token norms (criteria other than "output").
 */
export function heatmapGrid(profile: ProfileFile, module: string, sequence: number): HeatmapGrid | undefined {
  const norms = profile.norms;
  const seq = profile.sequences[sequence];
  if (!norms || !seq) return undefined;
  const rows = profile.layers.length;
  const cols = seq.tokens.length;
  const values = new Float64Array(rows * cols);
  const modules = module === ALL_MODULES ? profile.modules : profile.modules.filter((m) => m === module);
  for (const m of modules) {
    const perLayer = norms[m];
    if (!perLayer) continue;
    for (let r = 0; r < rows; r++) {
      const row = perLayer[r]?.[sequence];
      if (!row) continue;
      for (let c = 0; c < cols; c++) values[r * cols + c] = (values[r * cols + c] as number) + (row[c] as number);
    }
  }
  return { rows, cols, values };
}

/** The value at (row, col), or undefined outside the grid. */
export function gridValue(grid: HeatmapGrid, row: number, col: number): number | undefined {
  if (!Number.isInteger(row) || !Number.isInteger(col) || row < 0 || col < 0 || row >= grid.rows || col >= grid.cols) return undefined;
  return grid.values[row * grid.cols + col];
}
