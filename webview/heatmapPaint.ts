/**
 * Painting of the heatmap canvas. Cells are first written one pixel per cell into off-screen canvases
 * (rebuilt only when module, sequence, scale or theme change); each frame then scales the visible slice
 * up with smoothing off, so scrolling and hovering over 80 × 4096 cells stay cheap.
 */
import type { HeatmapGrid } from "../extension/viewModel/heatmapData";
import type { LayerStatus } from "../extension/viewModel/layerSelection";
import { visibleColumns, type HeatmapLayout } from "../extension/viewModel/heatmapLayout";
import type { CellRef } from "../extension/viewModel/panelState";
import { displayToken, truncateLabel, WORD_START_MARKER, wordStartSegments } from "../extension/viewModel/tokenText";
import type { ValueScale } from "../extension/viewModel/valueScale";
import { cssColorBytes, writeRampColor, type CanvasTheme } from "./theme";

/** Columns per off-screen chunk: well under every browser's canvas width limit. */
const CHUNK_COLUMNS = 8192;

/** The cell colours, one pixel per cell, split into chunks of CHUNK_COLUMNS columns. */
export interface CellImage {
  chunks: HTMLCanvasElement[];
  rows: number;
  cols: number;
}

/** Colours every cell of `grid` with `scale`; values ≤ 0 on a log scale get the theme's "zero" colour. */
export function buildCellImage(grid: HeatmapGrid, scale: ValueScale, theme: CanvasTheme): CellImage {
  const zero = cssColorBytes(theme.zero);
  const chunks: HTMLCanvasElement[] = [];
  for (let start = 0; start < Math.max(grid.cols, 1); start += CHUNK_COLUMNS) {
    const width = Math.max(1, Math.min(CHUNK_COLUMNS, grid.cols - start));
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = Math.max(1, grid.rows);
    const ctx = canvas.getContext("2d");
    if (!ctx) continue;
    const image = ctx.createImageData(width, canvas.height);
    for (let r = 0; r < grid.rows; r++) {
      for (let c = 0; c < width && start + c < grid.cols; c++) {
        const t = scale.position(grid.values[r * grid.cols + start + c] as number);
        const at = (r * width + c) * 4;
        if (t < 0) {
          image.data.set([zero[0], zero[1], zero[2], 255], at);
        } else {
          writeRampColor(t, image.data, at);
        }
      }
    }
    ctx.putImageData(image, 0, 0);
    chunks.push(canvas);
  }
  return { chunks, rows: grid.rows, cols: grid.cols };
}

/** What the frame shows besides the cells. */
export interface HeatmapFrame {
  layout: HeatmapLayout;
  scrollX: number;
  image: CellImage;
  rowLabels: string[];
  status: readonly LayerStatus[];
  tokens: readonly string[];
  special: readonly boolean[];
  hover: CellRef | null;
  pinned: CellRef | null;
  theme: CanvasTheme;
}

/** Draws one frame onto `ctx`, whose transform already maps CSS pixels to device pixels. */
export function paintHeatmap(ctx: CanvasRenderingContext2D, f: HeatmapFrame): void {
  const { layout, scrollX, theme } = f;
  // Opaque background, so exported PNGs look like the panel rather than showing transparency.
  ctx.fillStyle = theme.background;
  ctx.fillRect(0, 0, layout.canvasWidth, layout.canvasHeight);
  const { first, end } = visibleColumns(layout, scrollX);
  paintCells(ctx, f, first, end);
  paintRowLabels(ctx, f);
  paintColumnLabels(ctx, f, first, end);
  if (f.hover) outlineCell(ctx, f, f.hover, theme.hover, 1);
  // The pinned cell gets a halo in the background colour under the focus colour, visible on any ramp colour.
  if (f.pinned) {
    outlineCell(ctx, f, f.pinned, theme.background, 4);
    outlineCell(ctx, f, f.pinned, theme.focus, 2);
  }
}

function paintCells(ctx: CanvasRenderingContext2D, f: HeatmapFrame, first: number, end: number): void {
  const { layout, scrollX, image } = f;
  ctx.save();
  ctx.beginPath();
  ctx.rect(layout.left, layout.top, layout.canvasWidth - layout.left, layout.rows * layout.rowHeight);
  ctx.clip();
  ctx.imageSmoothingEnabled = false;
  for (let k = 0; k < image.chunks.length; k++) {
    const chunk = image.chunks[k] as HTMLCanvasElement;
    const chunkStart = k * CHUNK_COLUMNS;
    const from = Math.max(first, chunkStart);
    const to = Math.min(end, chunkStart + chunk.width);
    if (to <= from) continue;
    const x = layout.left + from * layout.cellWidth - scrollX;
    ctx.drawImage(chunk, from - chunkStart, 0, to - from, image.rows, x, layout.top, (to - from) * layout.cellWidth, image.rows * layout.rowHeight);
  }
  ctx.restore();
}

/** Row labels: layer number, plus a bar that is solid for kept layers, hollow for shared ones, absent without LoRA. */
function paintRowLabels(ctx: CanvasRenderingContext2D, f: HeatmapFrame): void {
  const { layout, theme } = f;
  const fontPx = Math.min(12, Math.max(8, layout.rowHeight - 2));
  ctx.font = `${fontPx}px ${theme.fontFamily}`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  // Deep models get a label every few rows so the text never overlaps; the markers are drawn on every row.
  const every = Math.max(1, Math.ceil((fontPx + 2) / layout.rowHeight));
  for (let r = 0; r < layout.rows; r++) {
    const y = layout.top + r * layout.rowHeight;
    const status = f.status[r] ?? "none";
    const kept = status === "kept";
    ctx.fillStyle = kept ? theme.kept : theme.shared;
    if (kept) ctx.fillRect(layout.left - 8, y + 1, 5, Math.max(1, layout.rowHeight - 2));
    else if (status === "shared") {
      ctx.strokeStyle = theme.shared;
      ctx.lineWidth = 1;
      ctx.strokeRect(layout.left - 7.5, y + 1.5, 4, Math.max(1, layout.rowHeight - 3));
    }
    if (r % every === 0) {
      ctx.fillStyle = kept ? theme.foreground : theme.muted;
      ctx.fillText(f.rowLabels[r] ?? "", layout.left - 12, y + layout.rowHeight / 2);
    }
  }
}

/** Column labels: rotated token text when cells are wide enough, otherwise token indices at a round stride. */
function paintColumnLabels(ctx: CanvasRenderingContext2D, f: HeatmapFrame, first: number, end: number): void {
  const { layout, scrollX, theme } = f;
  const family = theme.fontFamily;
  ctx.save();
  ctx.beginPath();
  ctx.rect(layout.left, 0, layout.canvasWidth - layout.left, layout.top);
  ctx.clip();
  if (layout.tokenLabels) {
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (let c = first; c < end; c++) {
      const x = layout.left + (c + 0.5) * layout.cellWidth - scrollX;
      const special = f.special[c] === true;
      ctx.font = `${special ? "italic bold " : ""}${Math.min(12, layout.cellWidth)}px ${family}`;
      ctx.save();
      ctx.translate(x, layout.top - 4);
      ctx.rotate(-Math.PI / 2);
      // A word-start mark "▁" drawn as is would be a long stroke; it becomes a dimmed dot before the word.
      let along = 0;
      for (const seg of wordStartSegments(truncateLabel(displayToken(f.tokens[c] ?? ""), 14))) {
        const text = seg.wordStart ? WORD_START_MARKER.repeat(Array.from(seg.text).length) : seg.text;
        ctx.fillStyle = seg.wordStart ? theme.muted : special ? theme.special : theme.foreground;
        // Half strength: some themes (Light Modern) give muted text the foreground colour itself.
        ctx.globalAlpha = seg.wordStart ? 0.6 : 1;
        ctx.fillText(text, along, 0);
        along += ctx.measureText(text).width;
      }
      ctx.restore();
    }
  } else {
    ctx.font = `11px ${family}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillStyle = theme.muted;
    const start = Math.ceil(first / layout.labelStride) * layout.labelStride;
    for (let c = start; c < end; c += layout.labelStride) {
      const x = layout.left + c * layout.cellWidth - scrollX;
      ctx.fillRect(x, layout.top - 5, 1, 4);
      ctx.fillText(String(c), x + 2, layout.top - 4);
    }
    // Special tokens still get a mark above their column when there is no room for text.
    ctx.fillStyle = theme.special;
    for (let c = first; c < end; c++) {
      if (f.special[c]) ctx.fillRect(layout.left + c * layout.cellWidth - scrollX, layout.top - 2, Math.max(1, layout.cellWidth), 2);
    }
  }
  ctx.restore();
}

function outlineCell(ctx: CanvasRenderingContext2D, f: HeatmapFrame, cell: CellRef, color: string, width: number): void {
  const { layout, scrollX } = f;
  const x = layout.left + cell.col * layout.cellWidth - scrollX;
  if (x + layout.cellWidth < layout.left || x > layout.canvasWidth) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.strokeRect(x - width / 2, layout.top + cell.row * layout.rowHeight - width / 2, layout.cellWidth + width, layout.rowHeight + width);
  ctx.restore();
}
