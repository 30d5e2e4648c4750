/**
 * The interactive heatmap: a viewport-sized canvas that scrolls over the columns, with hover tooltip,
 * click-to-pin and keyboard navigation (arrows move the pinned cell, Escape unpins).
 */
import type { ProfileFile } from "../extension/core/importance/profileSchema";
import { ALL_MODULES, gridValue, heatmapGrid, type HeatmapGrid } from "../extension/viewModel/heatmapData";
import { cellAt, heatmapLayout, scrollToShow, type HeatmapLayout, type HeatmapZoom } from "../extension/viewModel/heatmapLayout";
import { exactValue } from "../extension/viewModel/format";
import type { LayerStatus } from "../extension/viewModel/layerSelection";
import type { CellRef } from "../extension/viewModel/panelState";
import { displayToken, truncateLabel, wordStartSegments } from "../extension/viewModel/tokenText";
import { makeValueScale, valueExtent, type ScaleKind, type ValueScale } from "../extension/viewModel/valueScale";
import { h } from "./dom";
import { buildCellImage, paintHeatmap, type CellImage } from "./heatmapPaint";
import { renderLegend } from "./legendView";
import { readCanvasTheme, type CanvasTheme } from "./theme";

/** Longest token text shown in the tooltip and readout; the CSV export carries the full token. */
const MAX_TOKEN_CHARS = 80;

/** How the tooltip names a layer's status. */
const STATUS_WORDS: Record<LayerStatus, string> = { kept: "kept", shared: "not kept", none: "no LoRA" };

/** What the heatmap shows. */
export interface HeatmapModel {
  profile: ProfileFile;
  module: string;
  sequence: number;
  scale: ScaleKind;
  zoom: HeatmapZoom;
  status: readonly LayerStatus[];
  pinned: CellRef | null;
}

/** The heatmap component; owns its DOM under `root`. */
export class HeatmapView {
  readonly root: HTMLElement;
  private readonly scroller: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tooltip: HTMLDivElement;
  private readonly readout: HTMLParagraphElement;
  private readonly legend: HTMLDivElement;
  private model: HeatmapModel | undefined;
  private grid: HeatmapGrid | undefined;
  private scale: ValueScale | undefined;
  private image: CellImage | undefined;
  private layout: HeatmapLayout | undefined;
  private theme: CanvasTheme = readCanvasTheme();
  private hover: CellRef | null = null;
  /** The pointer's last position over the canvas, so scrolling under a still pointer updates the hover. */
  private pointer: { clientX: number; clientY: number } | null = null;
  private frameRequested = false;
  private gridKey = "";
  private imageKey = "";

  /** Builds the DOM; `onPin` is called when the user pins or unpins a cell. */
  constructor(private readonly onPin: (cell: CellRef | null) => void) {
    this.canvas = h("canvas", { className: "heatmap-canvas", attrs: { tabindex: "0", role: "img" } });
    this.spacer = h("div", { className: "heatmap-spacer" }, [this.canvas]);
    this.scroller = h("div", { className: "heatmap-scroller" }, [this.spacer]);
    this.tooltip = h("div", { className: "heatmap-tooltip", attrs: { role: "tooltip", id: "heatmap-tooltip" } });
    this.tooltip.hidden = true;
    this.readout = h("p", { className: "cell-readout", attrs: { "aria-live": "polite" } });
    this.legend = h("div", { className: "legend" });
    this.root = h("div", { className: "heatmap" }, [this.scroller, this.tooltip, this.legend, this.readout]);
    this.canvas.setAttribute("aria-describedby", "heatmap-tooltip");
    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
    this.canvas.addEventListener("pointerleave", () => {
      this.pointer = null;
      this.setHover(null, 0, 0);
    });
    this.canvas.addEventListener("click", (e) => this.onClick(e));
    this.canvas.addEventListener("keydown", (e) => this.onKey(e));
    new ResizeObserver(() => this.relayout()).observe(this.scroller);
  }

  /** Shows `model`; recomputes only what changed (grid, colours, layout). */
  update(model: HeatmapModel): void {
    this.model = model;
    const gridKey = `${model.module}\u0000${model.sequence}`;
    if (gridKey !== this.gridKey || !this.grid) {
      this.grid = heatmapGrid(model.profile, model.module, model.sequence);
      this.gridKey = gridKey;
      this.imageKey = "";
    }
    this.refreshImage();
    this.relayout();
  }

  /** Forces the grid to be rebuilt on the next update (a new profile arrived). */
  invalidate(): void {
    this.gridKey = "";
  }

  /** Re-reads theme colours and repaints. */
  themeChanged(): void {
    this.theme = readCanvasTheme();
    this.imageKey = "";
    this.refreshImage();
    this.requestFrame();
  }

  /** The current grid and layout, for export and the test hook. */
  snapshot(): { grid: HeatmapGrid | undefined; layout: HeatmapLayout | undefined; scale: ValueScale | undefined; scrollX: number } {
    return { grid: this.grid, layout: this.layout, scale: this.scale, scrollX: this.scroller.scrollLeft };
  }

  /** The colour image and theme for exporting a full-size PNG. */
  exportParts(): { image: CellImage; theme: CanvasTheme } | undefined {
    return this.image ? { image: this.image, theme: this.theme } : undefined;
  }

  private refreshImage(): void {
    const m = this.model;
    if (!m || !this.grid) {
      this.image = undefined;
      return;
    }
    const key = `${this.gridKey}\u0000${m.scale}`;
    if (key === this.imageKey && this.image) return;
    this.scale = makeValueScale(m.scale, valueExtent(this.grid.values));
    this.image = buildCellImage(this.grid, this.scale, this.theme);
    this.imageKey = key;
    renderLegend(this.legend, this.scale, this.theme, m.module === ALL_MODULES ? "all modules (sum)" : m.module);
  }

  private relayout(): void {
    const m = this.model;
    if (!m || !this.grid) {
      this.root.classList.add("empty");
      this.readout.textContent = !m
        ? ""
        : !m.profile.norms
          ? `This profile has no per-token norms (criterion "${m.profile.criterion}"); only layer importance is shown.`
          : "This profile has no sequences to show.";
      return;
    }
    this.root.classList.remove("empty");
    this.layout = heatmapLayout(this.grid.rows, this.grid.cols, this.scroller.clientWidth || 800, m.zoom);
    const l = this.layout;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(l.canvasWidth * dpr);
    this.canvas.height = Math.round(l.canvasHeight * dpr);
    this.canvas.style.width = `${l.canvasWidth}px`;
    this.canvas.style.height = `${l.canvasHeight}px`;
    this.spacer.style.width = `${l.left + l.contentWidth}px`;
    this.canvas.dataset.rows = String(l.rows);
    this.canvas.dataset.cols = String(l.cols);
    // Read-only geometry for tests and tools: where each cell is, without reading pixels.
    this.canvas.dataset.left = String(l.left);
    this.canvas.dataset.top = String(l.top);
    this.canvas.dataset.cellWidth = String(l.cellWidth);
    this.canvas.dataset.rowHeight = String(l.rowHeight);
    this.canvas.dataset.kept = m.status.map((k, i) => (k === "kept" ? i : -1)).filter((i) => i >= 0).join(",");
    this.canvas.setAttribute("aria-label", `Heatmap of LoRA output magnitude: ${l.rows} layers by ${l.cols} tokens. Arrow keys move the pinned cell, Escape unpins.`);
    this.updateReadout();
    // Module, threshold or layout may have changed under a still pointer: re-describe the hovered cell.
    if (this.pointer) this.hoverAtPointer(true);
    this.requestFrame();
  }

  private requestFrame(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.paint();
    });
  }

  private paint(): void {
    const m = this.model;
    const l = this.layout;
    const ctx = this.canvas.getContext("2d");
    if (!m || !l || !this.image || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const seq = m.profile.sequences[m.sequence];
    paintHeatmap(ctx, {
      layout: l,
      scrollX: this.scroller.scrollLeft,
      image: this.image,
      rowLabels: m.profile.layers.map((layer) => `L${layer}`),
      status: m.status,
      tokens: seq?.tokens ?? [],
      special: seq?.special ?? [],
      hover: this.hover,
      pinned: m.pinned,
      theme: this.theme,
    });
  }

  private cellFromEvent(e: { clientX: number; clientY: number }): CellRef | undefined {
    if (!this.layout) return undefined;
    const rect = this.canvas.getBoundingClientRect();
    return cellAt(this.layout, e.clientX - rect.left, e.clientY - rect.top, this.scroller.scrollLeft);
  }

  private onPointerMove(e: PointerEvent): void {
    this.pointer = { clientX: e.clientX, clientY: e.clientY };
    this.hoverAtPointer(false);
  }

  private onScroll(): void {
    // The columns moved under a still pointer: the hovered cell is now a different one.
    if (this.pointer) this.hoverAtPointer(false);
    this.requestFrame();
  }

  private hoverAtPointer(refresh: boolean): void {
    if (!this.pointer) return;
    const rect = this.root.getBoundingClientRect();
    this.setHover(this.cellFromEvent(this.pointer) ?? null, this.pointer.clientX - rect.left, this.pointer.clientY - rect.top, refresh);
  }

  private setHover(cell: CellRef | null, x: number, y: number, refresh = false): void {
    const same = !refresh && cell && this.hover && cell.row === this.hover.row && cell.col === this.hover.col;
    this.hover = cell;
    if (!cell) {
      this.tooltip.hidden = true;
    } else {
      if (!same) this.tooltip.replaceChildren(...this.describeCell(cell));
      this.tooltip.hidden = false;
      // Keep the tooltip inside the panel: flip to the pointer's left near the right edge.
      const width = this.tooltip.offsetWidth;
      const flip = x + 16 + width > this.root.clientWidth;
      this.tooltip.style.left = `${Math.max(0, flip ? x - 12 - width : x + 16)}px`;
      this.tooltip.style.top = `${y + 16}px`;
    }
    if (!same) this.requestFrame();
  }

  private onClick(e: MouseEvent): void {
    const cell = this.cellFromEvent(e);
    if (!cell || !this.model) return;
    const p = this.model.pinned;
    this.onPin(p && p.row === cell.row && p.col === cell.col ? null : cell);
  }

  private onKey(e: KeyboardEvent): void {
    const m = this.model;
    const l = this.layout;
    if (!m || !l) return;
    const p = m.pinned ?? { row: 0, col: 0 };
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageUp: [0, -16], PageDown: [0, 16] };
    if (e.key === "Escape") {
      if (m.pinned) this.onPin(null);
      return;
    }
    if (e.key === "Home" || e.key === "End" || moves[e.key]) {
      e.preventDefault();
      const [dr, dc] = moves[e.key] ?? [0, 0];
      const col = e.key === "Home" ? 0 : e.key === "End" ? l.cols - 1 : Math.min(l.cols - 1, Math.max(0, p.col + dc));
      const row = Math.min(l.rows - 1, Math.max(0, p.row + dr));
      this.scroller.scrollLeft = scrollToShow(l, col, this.scroller.scrollLeft);
      this.onPin({ row, col });
    }
  }

  private updateReadout(): void {
    const m = this.model;
    if (!m || !this.grid) return;
    if (!m.pinned) {
      this.readout.textContent = "Hover a cell for its value; click (or focus the map and press an arrow key) to pin it.";
      return;
    }
    this.readout.replaceChildren("Pinned: ", ...this.describeCell(m.pinned));
  }

  /** The cell's description as DOM nodes; the token goes in as text, shown with its invisible characters made visible. */
  private describeCell(cell: CellRef): Node[] {
    const m = this.model;
    if (!m || !this.grid) return [];
    const seq = m.profile.sequences[m.sequence];
    const value = gridValue(this.grid, cell.row, cell.col);
    const token = seq?.tokens[cell.col] ?? "";
    const special = seq?.special[cell.col] === true;
    const moduleLabel = m.module === ALL_MODULES ? "all modules (sum)" : m.module;
    return [
      h("span", { className: "tt-line" }, [
        h("strong", { text: `Layer ${m.profile.layers[cell.row] ?? cell.row}` }),
        ` · ${moduleLabel} · ${STATUS_WORDS[m.status[cell.row] ?? "none"]}`,
      ]),
      h("span", { className: "tt-line" }, [
        `Token ${cell.col}: `,
        // The exact token text; word-start marks "▁" stay in it, dimmed, so the reader sees where the word starts.
        h("code", { className: special ? "tt-token special" : "tt-token", attrs: { "data-raw-token": token } },
          wordStartSegments(truncateLabel(displayToken(token), MAX_TOKEN_CHARS)).map((seg) => (seg.wordStart ? h("span", { className: "word-start", text: seg.text }) : seg.text))),
        special ? " (special)" : "",
        Array.from(token).length > MAX_TOKEN_CHARS ? ` (${Array.from(token).length} characters)` : "",
      ]),
      h("span", { className: "tt-line" }, ["‖LoRA output‖² = ", h("span", { className: "tt-value", text: value === undefined ? "—" : exactValue(value) })]),
    ];
  }
}
