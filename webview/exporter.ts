/**
 * Export: builds PNG, CSV and SVG content in the panel and posts it to the host, which asks where to save it.
 */
import type { ProfileFile } from "../extension/core/importance/profileSchema";
import type { ExportFormat, WebviewToHost } from "../extension/viewModel/protocol";
import { heatmapCsv, importanceCsv } from "../extension/viewModel/csv";
import { ALL_MODULES } from "../extension/viewModel/heatmapData";
import { heatmapLayout, ROW_LABEL_WIDTH, type HeatmapLayout } from "../extension/viewModel/heatmapLayout";
import { exportFileName } from "../extension/viewModel/exportNames";
import type { LayerStatus } from "../extension/viewModel/layerSelection";
import { paintHeatmap, type CellImage } from "./heatmapPaint";
import type { CanvasTheme } from "./theme";
import type { PruneMode } from "../extension/core/adapter/dropRecord";

/** Widest exported PNG in CSS pixels; wider sequences get narrower cells. */
const MAX_EXPORT_WIDTH = 16000;
const TITLE_HEIGHT = 28;
const SVG_NS = "http://www.w3.org/2000/svg";

/** What an export needs to know about the panel. */
export interface ExportContext {
  profile: ProfileFile;
  sourcePath: string;
  module: string;
  sequence: number;
  threshold: number;
  mode: PruneMode;
  status: readonly LayerStatus[];
}

/** Builds an `export` message; `requestId` pairs it with the host's exportDone/error answer. */
export function exportMessage(requestId: number, format: ExportFormat, ctx: ExportContext, what: string, content: string): WebviewToHost {
  const moduleName = ctx.module === ALL_MODULES ? "all" : ctx.module;
  const parts = what === "importance" ? ["importance", `T${ctx.threshold.toFixed(2)}`] : ["heatmap", moduleName, `seq${ctx.sequence}`];
  return { type: "export", requestId, format, fileName: exportFileName(ctx.sourcePath, parts, format), content };
}

/** The heatmap CSV for the current module and sequence. */
export function heatmapCsvContent(ctx: ExportContext): string {
  return heatmapCsv(ctx.profile, ctx.module, ctx.sequence);
}

/** The importance CSV at the current threshold and mode. */
export function importanceCsvContent(ctx: ExportContext): string {
  return importanceCsv(ctx.profile, ctx.threshold, ctx.mode);
}

/** Renders the whole heatmap (all columns, not just the visible ones) with a title and the legend to a PNG data URL. */
export function heatmapPngContent(ctx: ExportContext, image: CellImage, theme: CanvasTheme, legend: HTMLCanvasElement | null): string {
  const base = heatmapLayout(image.rows, image.cols, ROW_LABEL_WIDTH + image.cols * 16, 16);
  const cellWidth = Math.min(16, Math.max(0.25, (MAX_EXPORT_WIDTH - ROW_LABEL_WIDTH) / Math.max(1, image.cols)));
  const tokenLabels = cellWidth >= 10;
  const layout: HeatmapLayout = {
    ...base,
    cellWidth,
    tokenLabels,
    top: tokenLabels ? base.top : 22,
    contentWidth: cellWidth * image.cols,
    canvasWidth: ROW_LABEL_WIDTH + cellWidth * image.cols,
    labelStride: tokenLabels ? 1 : Math.max(1, Math.ceil(48 / cellWidth)),
  };
  layout.canvasHeight = layout.top + layout.rows * layout.rowHeight + 2;
  const legendHeight = legend ? legend.height / (window.devicePixelRatio || 1) + 8 : 0;
  const canvas = document.createElement("canvas");
  const scale = 2; // Export at 2× for crisp text regardless of the screen.
  const width = Math.max(layout.canvasWidth, 360) + 16;
  const height = TITLE_HEIGHT + layout.canvasHeight + legendHeight + 8;
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const g = canvas.getContext("2d");
  if (!g) throw new Error("Canvas 2D is unavailable; cannot export PNG.");
  g.scale(scale, scale);
  g.fillStyle = theme.background;
  g.fillRect(0, 0, width, height);
  g.fillStyle = theme.foreground;
  g.font = `13px ${theme.fontFamily}`;
  g.textBaseline = "middle";
  const moduleName = ctx.module === ALL_MODULES ? "all modules (sum)" : ctx.module;
  g.fillText(`‖LoRA output‖² · ${moduleName} · sequence #${ctx.sequence} · ${image.rows} layers × ${image.cols} tokens`, 8, TITLE_HEIGHT / 2);
  g.save();
  g.translate(8, TITLE_HEIGHT);
  const seq = ctx.profile.sequences[ctx.sequence];
  paintHeatmap(g, {
    layout, scrollX: 0, image, rowLabels: ctx.profile.layers.map((l) => `L${l}`), status: ctx.status,
    tokens: seq?.tokens ?? [], special: seq?.special ?? [], hover: null, pinned: null, theme,
  });
  g.restore();
  if (legend) g.drawImage(legend, ROW_LABEL_WIDTH, TITLE_HEIGHT + layout.canvasHeight + 4, legend.width / (window.devicePixelRatio || 1), legend.height / (window.devicePixelRatio || 1));
  return canvas.toDataURL("image/png");
}

/** Serialises the given charts side by side into one standalone SVG with the theme's colours written in. */
export function chartsSvgContent(charts: SVGSVGElement[]): string {
  const out = document.createElementNS(SVG_NS, "svg");
  let x = 0;
  let height = 0;
  for (const chart of charts) {
    const clone = inlineStyles(chart);
    const w = Number(chart.getAttribute("width") ?? 0);
    clone.setAttribute("x", String(x));
    out.append(clone);
    x += w + 16;
    height = Math.max(height, Number(chart.getAttribute("height") ?? 0));
  }
  out.setAttribute("xmlns", SVG_NS);
  out.setAttribute("width", String(Math.max(0, x - 16)));
  out.setAttribute("height", String(height));
  // A background rectangle rather than a style attribute: the panel's CSP forbids inline styles.
  const bg = getComputedStyle(document.body).getPropertyValue("--vscode-editor-background").trim();
  if (bg) {
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("width", "100%");
    rect.setAttribute("height", "100%");
    rect.setAttribute("fill", bg);
    out.prepend(rect);
  }
  return new XMLSerializer().serializeToString(out);
}

/** Copies the computed paint properties onto a clone, since CSS variables do not exist outside the webview. */
function inlineStyles(svg: SVGSVGElement): SVGSVGElement {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const from = [svg, ...Array.from(svg.querySelectorAll("*"))];
  const to = [clone, ...Array.from(clone.querySelectorAll("*"))];
  from.forEach((el, i) => {
    const style = getComputedStyle(el);
    const target = to[i];
    if (!target) return;
    for (const prop of ["fill", "stroke", "stroke-width", "stroke-dasharray", "opacity", "font-size", "font-family"]) {
      const value = style.getPropertyValue(prop);
      if (value) target.setAttribute(prop, value);
    }
  });
  return clone;
}
