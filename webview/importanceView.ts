/**
 * Per-layer importance bars (layer order) and the cumulative importance curve (importance order, LoRA layers
 * only), with LoRA-drop's kept/shared decision marked on both. SVG via d3: at most a few hundred marks.
 */
import { axisBottom, axisLeft } from "d3-axis";
import { scaleBand, scaleLinear } from "d3-scale";
import { select } from "d3-selection";
import { line } from "d3-shape";
import { compactValue } from "../extension/viewModel/format";
import { chartWidths } from "../extension/viewModel/sweepChart";
import type { LayerSelection, LayerStatus } from "../extension/viewModel/layerSelection";
import { h } from "./dom";

const MARGIN = { top: 16, right: 12, bottom: 34, left: 44 };
const HEIGHT = 200;
const SVG_NS = "http://www.w3.org/2000/svg";
/** Smallest drawn height of a bar whose value is above zero. */
const MIN_BAR_PX = 2;

/** What the two charts show. */
export interface ImportanceModel {
  layers: readonly number[];
  importance: readonly number[];
  selection: LayerSelection;
  status: readonly LayerStatus[];
  threshold: number;
  /** "shared" or "dropped": the word for layers that lose their own LoRA. */
  otherLabel: string;
}

/** A chart drawn beside the cumulative curve (the sweep's), sized by this view. */
export interface SideChart {
  root: HTMLElement;
  resize(width: number): void;
}

/** The importance bars and cumulative curve, with `side` beside the curve (layout: chartWidths). */
export class ImportanceView {
  readonly root: HTMLElement;
  private readonly bars: SVGSVGElement;
  private readonly curve: SVGSVGElement;
  private model: ImportanceModel | undefined;
  private observedWidth = -1;

  /** Builds the two empty charts and places `side` after the curve. */
  constructor(private readonly side: SideChart) {
    this.bars = document.createElementNS(SVG_NS, "svg");
    this.curve = document.createElementNS(SVG_NS, "svg");
    this.bars.classList.add("chart", "importance-bars");
    this.curve.classList.add("chart", "cumulative-curve");
    this.bars.setAttribute("role", "img");
    this.curve.setAttribute("role", "img");
    this.root = h("div", { className: "charts" }, [
      h("figure", { className: "chart-figure" }, [h("figcaption", { text: "Layer importance (share of total LoRA output)" }), this.bars]),
      h("figure", { className: "chart-figure" }, [h("figcaption", { text: "Cumulative importance, most important layers first" }), this.curve]),
      side.root,
    ]);
    // Only a change of width redraws, in the next frame: the sweep chart beside the curve changes the row's height
    // as it fills, and redrawing inside the observer's callback would make the observer report itself again.
    new ResizeObserver(() => {
      const width = this.root.clientWidth;
      if (width === this.observedWidth) return;
      this.observedWidth = width;
      requestAnimationFrame(() => this.render());
    }).observe(this.root);
  }

  /** Redraws both charts for `model`. */
  update(model: ImportanceModel): void {
    this.model = model;
    this.render();
  }

  private render(): void {
    const m = this.model;
    if (!m) return;
    const widths = chartWidths(this.root.clientWidth || 800);
    renderBars(this.bars, m, widths.bars);
    renderCurve(this.curve, m, widths.curve);
    this.side.resize(widths.sweep);
  }
}

function prepare(svg: SVGSVGElement, width: number): void {
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(HEIGHT));
  svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  svg.replaceChildren();
}

function renderBars(svg: SVGSVGElement, m: ImportanceModel, width: number): void {
  prepare(svg, width);
  const n = m.importance.length;
  const x = scaleBand<number>().domain(m.importance.map((_, i) => i)).range([MARGIN.left, width - MARGIN.right]).padding(n > 40 ? 0.1 : 0.2);
  const max = Math.max(...m.importance, 1e-12);
  const y = scaleLinear().domain([0, max]).nice().range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const root = select(svg);
  const stride = Math.max(1, Math.ceil(n / Math.floor((width - MARGIN.left) / 28)));
  root.append("g").attr("class", "axis").attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`)
    .call(axisBottom(x).tickValues(x.domain().filter((i) => i % stride === 0)).tickFormat((i) => String(m.layers[i] ?? i)));
  root.append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(4).tickFormat((v) => compactValue(Number(v))));
  root.append("text").attr("class", "axis-title").attr("x", (MARGIN.left + width - MARGIN.right) / 2).attr("y", HEIGHT - 4).attr("text-anchor", "middle").text("layer");
  root.append("g").selectAll("rect").data(m.importance.map((v, i) => ({ v, i }))).join("rect")
    .attr("class", (d) => `bar ${m.status[d.i] ?? "none"}`)
    .attr("data-layer", (d) => String(d.i))
    .attr("x", (d) => x(d.i) ?? 0)
    .attr("width", x.bandwidth())
    // A layer with a tiny but non-zero share still gets a 2 px stub, so no LoRA layer's bar vanishes (its title has the value).
    .attr("y", (d) => y(0) - barHeight(y(0) - y(d.v), d.v))
    .attr("height", (d) => barHeight(y(0) - y(d.v), d.v))
    .append("title").text((d) => `Layer ${m.layers[d.i] ?? d.i}: importance ${d.v} — ${m.status[d.i] === "shared" ? m.otherLabel : m.status[d.i] === "kept" ? "kept" : "no LoRA"}`);
  const others = m.status.filter((st) => st === "shared").length;
  svg.setAttribute("aria-label", `Importance of ${n} layers; ${m.selection.keptCount} kept, ${others} ${m.otherLabel}.`);
}

/** A bar's drawn height: its scaled height, at least MIN_BAR_PX when the value is above zero. */
function barHeight(scaled: number, value: number): number {
  return value > 0 ? Math.max(MIN_BAR_PX, scaled) : 0;
}

function renderCurve(svg: SVGSVGElement, m: ImportanceModel, width: number): void {
  prepare(svg, width);
  const n = m.selection.order.length;
  const x = scaleLinear().domain([0, Math.max(1, n)]).range([MARGIN.left, width - MARGIN.right]);
  const y = scaleLinear().domain([0, 1]).range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const root = select(svg);
  root.append("g").attr("class", "axis").attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`).call(axisBottom(x).ticks(Math.min(n, 8)).tickFormat((v) => String(v)));
  root.append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(5));
  root.append("text").attr("class", "axis-title").attr("x", (MARGIN.left + width - MARGIN.right) / 2).attr("y", HEIGHT - 4).attr("text-anchor", "middle").text("layers kept");
  const k = m.selection.keptCount;
  root.append("rect").attr("class", "kept-region").attr("x", x(0)).attr("y", MARGIN.top).attr("width", Math.max(0, x(k) - x(0))).attr("height", HEIGHT - MARGIN.top - MARGIN.bottom);
  // The tint alone is faint on some themes; a solid edge marks where the kept set ends.
  if (k > 0) root.append("line").attr("class", "kept-edge").attr("x1", x(k)).attr("x2", x(k)).attr("y1", MARGIN.top).attr("y2", HEIGHT - MARGIN.bottom);
  root.append("line").attr("class", "threshold-line").attr("x1", x(0)).attr("x2", x(n)).attr("y1", y(m.threshold)).attr("y2", y(m.threshold));
  // Label at the left end: the curve approaches 1 at the right, where a label would collide with it.
  root.append("text").attr("class", "threshold-label").attr("x", x(0) + 4).attr("y", y(m.threshold) - 4).attr("text-anchor", "start").text(`T = ${m.threshold.toFixed(2)}`);
  const points: [number, number][] = [[0, 0], ...m.selection.cumulative.map((c, i): [number, number] => [i + 1, c])];
  root.append("path").attr("class", "curve-line").attr("d", line<[number, number]>().x((d) => x(d[0])).y((d) => y(d[1]))(points) ?? "");
  root.append("g").selectAll("circle").data(m.selection.cumulative.map((c, i) => ({ c, i }))).join("circle")
    .attr("class", (d) => `curve-point ${d.i < k ? "kept" : "shared"}`)
    .attr("data-layer", (d) => String(m.selection.order[d.i]))
    .attr("cx", (d) => x(d.i + 1))
    .attr("cy", (d) => y(d.c))
    .attr("r", n > 40 ? 2 : 3.5)
    .append("title").text((d) => `#${d.i + 1}: layer ${m.layers[m.selection.order[d.i] ?? 0] ?? ""}, cumulative ${d.c}`);
  svg.setAttribute("aria-label", `Cumulative importance reaches ${m.threshold.toFixed(2)} after ${k} of ${n} layers.`);
}
