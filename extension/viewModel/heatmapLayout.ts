/**
 * Geometry of the heatmap canvas: margins, cell sizes, which columns are visible at a scroll offset, and the
 * cell under a pointer. Pure, so hit-testing is unit-tested without a browser.
 *
 * The canvas is only as wide as the viewport; wide sequences scroll horizontally and only the visible
 * columns are drawn, which keeps 80 layers × 4096 tokens responsive.
 */

/** Cell width choice: fit the sequence into the viewport (with a floor), or a fixed pixel width. */
export type HeatmapZoom = "fit" | 4 | 8 | 16;

/** The zoom choices in menu order. */
export const HEATMAP_ZOOMS: readonly HeatmapZoom[] = ["fit", 4, 8, 16];

/** Space for row labels ("L79" plus the kept/shared marker). */
export const ROW_LABEL_WIDTH = 64;
/** Narrowest cell in "fit" mode: below this a pointer can no longer pick a single token. */
export const MIN_FIT_CELL_WIDTH = 2;
/** Cells at least this wide get their token text as a rotated column label. */
export const TOKEN_LABEL_MIN_WIDTH = 10;

/** Everything the renderer and the pointer handler need to agree on. */
export interface HeatmapLayout {
  rows: number;
  cols: number;
  cellWidth: number;
  rowHeight: number;
  /** Left margin (row labels) and top margin (column labels), in CSS pixels. */
  left: number;
  top: number;
  /** Full width of all columns, which may exceed the viewport (then it scrolls). */
  contentWidth: number;
  /** Width of the canvas in CSS pixels: margin plus the visible part of the columns. */
  canvasWidth: number;
  canvasHeight: number;
  /** True when column labels are token strings; false when they are token indices every `labelStride`. */
  tokenLabels: boolean;
  labelStride: number;
}

/** Computes the layout for a rows × cols grid shown in a viewport `availableWidth` pixels wide. */
export function heatmapLayout(rows: number, cols: number, availableWidth: number, zoom: HeatmapZoom): HeatmapLayout {
  const plotWidth = Math.max(40, Math.floor(availableWidth) - ROW_LABEL_WIDTH);
  const cellWidth = zoom === "fit" ? Math.max(MIN_FIT_CELL_WIDTH, cols > 0 ? plotWidth / cols : plotWidth) : zoom;
  // Rows stay readable (≥ 6 px) and the whole map stays around 480 px tall for deep models.
  const rowHeight = Math.max(6, Math.min(20, Math.floor(480 / Math.max(1, rows))));
  const tokenLabels = cellWidth >= TOKEN_LABEL_MIN_WIDTH;
  const top = tokenLabels ? 96 : 22;
  const contentWidth = cols * cellWidth;
  return {
    rows,
    cols,
    cellWidth,
    rowHeight,
    left: ROW_LABEL_WIDTH,
    top,
    contentWidth,
    canvasWidth: ROW_LABEL_WIDTH + Math.min(contentWidth, plotWidth),
    canvasHeight: top + rows * rowHeight + 2,
    tokenLabels,
    labelStride: tokenLabels ? 1 : niceStride(Math.ceil(48 / cellWidth)),
  };
}

/** The half-open range [first, end) of columns that intersect the viewport at horizontal scroll `scrollX`. */
export function visibleColumns(layout: HeatmapLayout, scrollX: number): { first: number; end: number } {
  const visibleWidth = layout.canvasWidth - layout.left;
  const first = Math.max(0, Math.floor(scrollX / layout.cellWidth));
  const end = Math.min(layout.cols, Math.ceil((scrollX + visibleWidth) / layout.cellWidth));
  return { first, end: Math.max(first, end) };
}

/** The cell under canvas point (x, y) at scroll `scrollX`, or undefined over the margins or outside the grid. */
export function cellAt(layout: HeatmapLayout, x: number, y: number, scrollX: number): { row: number; col: number } | undefined {
  if (x < layout.left || y < layout.top || x >= layout.canvasWidth) return undefined;
  const row = Math.floor((y - layout.top) / layout.rowHeight);
  const col = Math.floor((x - layout.left + scrollX) / layout.cellWidth);
  if (row < 0 || row >= layout.rows || col < 0 || col >= layout.cols) return undefined;
  return { row, col };
}

/** The scroll offset that brings column `col` into view, or the current one when it already is. */
export function scrollToShow(layout: HeatmapLayout, col: number, scrollX: number): number {
  const visibleWidth = layout.canvasWidth - layout.left;
  const x0 = col * layout.cellWidth;
  const x1 = x0 + layout.cellWidth;
  if (x0 < scrollX) return x0;
  if (x1 > scrollX + visibleWidth) return Math.min(x1 - visibleWidth, Math.max(0, layout.contentWidth - visibleWidth));
  return scrollX;
}

/** The smallest 1, 2 or 5 × 10^k that is ≥ n: index labels land on round numbers. */
export function niceStride(n: number): number {
  if (n <= 1) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(n)));
  for (const m of [1, 2, 5, 10]) if (m * power >= n) return m * power;
  return 10 * power;
}
