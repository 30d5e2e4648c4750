/**
 * The comparison of two profiles' layer importance: grouped bars side by side, or the per-layer difference
 * (comparison − primary), plus which layers each would keep at the current threshold.
 */
import { axisBottom, axisLeft } from "d3-axis";
import { scaleBand, scaleLinear } from "d3-scale";
import { select } from "d3-selection";
import type { ImportanceComparison } from "../extension/viewModel/compare";
import { compactValue } from "../extension/viewModel/format";
import { h } from "./dom";

const MARGIN = { top: 16, right: 12, bottom: 34, left: 52 };
const HEIGHT = 220;

/** What the comparison shows. */
export interface CompareModel {
  comparison: ImportanceComparison;
  view: "sideBySide" | "difference";
  primaryLabel: string;
  compareLabel: string;
  layers: readonly number[];
}

/** The comparison chart and summary; owns its DOM under `root`. */
export class CompareView {
  readonly root: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly legend: HTMLElement;
  private readonly summary: HTMLParagraphElement;
  private model: CompareModel | undefined;

  /** Builds the empty chart. */
  constructor() {
    this.svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.svg.classList.add("chart", "compare-chart");
    this.svg.setAttribute("role", "img");
    this.legend = h("div", { className: "compare-legend" });
    this.summary = h("p", { className: "compare-summary" });
    this.root = h("div", { className: "compare" }, [this.legend, this.svg, this.summary]);
    new ResizeObserver(() => this.render()).observe(this.root);
  }

  /** Redraws for `model`. */
  update(model: CompareModel): void {
    this.model = model;
    this.render();
  }

  private render(): void {
    const m = this.model;
    if (!m) return;
    const c = m.comparison;
    const width = Math.max(300, (this.root.clientWidth || 800) - 8);
    this.svg.setAttribute("width", String(width));
    this.svg.setAttribute("height", String(HEIGHT));
    this.svg.replaceChildren();
    const difference = m.view === "difference" && c.aligned;
    this.legend.replaceChildren(
      ...(difference
        ? [h("span", { className: "swatch increase" }), h("span", { text: `${m.compareLabel} higher` }), h("span", { className: "swatch decrease" }), h("span", { text: `${m.primaryLabel} higher` })]
        : [h("span", { className: "swatch primary" }), h("span", { text: m.primaryLabel }), h("span", { className: "swatch compare" }), h("span", { text: m.compareLabel })]),
    );
    if (difference) drawDifference(this.svg, m, width);
    else drawSideBySide(this.svg, m, width);
    const fmt = (list: number[]): string => (list.length ? list.map((i) => m.layers[i] ?? i).join(", ") : "none");
    this.summary.textContent = c.aligned
      ? `At this threshold both keep layers ${fmt(c.keptBoth)}; only the primary keeps ${fmt(c.keptPrimaryOnly)}; only the comparison keeps ${fmt(c.keptCompareOnly)}.`
      : `The profiles have different layer counts (${c.primary.length} vs ${c.compare.length}); only side-by-side bars are shown.`;
  }
}

function drawSideBySide(svg: SVGSVGElement, m: CompareModel, width: number): void {
  const c = m.comparison;
  const n = Math.max(c.primary.length, c.compare.length);
  const x = scaleBand<number>().domain(Array.from({ length: n }, (_, i) => i)).range([MARGIN.left, width - MARGIN.right]).padding(0.15);
  const inner = scaleBand<string>().domain(["primary", "compare"]).range([0, x.bandwidth()]);
  const y = scaleLinear().domain([0, Math.max(...c.primary, ...c.compare, 1e-12)]).nice().range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const root = select(svg);
  axes(root, x, y, width, m.layers, n);
  for (const [key, values] of [["primary", c.primary], ["compare", c.compare]] as const) {
    root.append("g").selectAll("rect").data(values.map((v, i) => ({ v, i }))).join("rect")
      .attr("class", `bar ${key}`)
      .attr("x", (d) => (x(d.i) ?? 0) + (inner(key) ?? 0))
      .attr("width", inner.bandwidth())
      .attr("y", (d) => y(d.v))
      .attr("height", (d) => Math.max(0, y(0) - y(d.v)))
      .append("title").text((d) => `Layer ${m.layers[d.i] ?? d.i}, ${key}: ${d.v}`);
  }
  svg.setAttribute("aria-label", "Layer importance of both profiles side by side");
}

function drawDifference(svg: SVGSVGElement, m: CompareModel, width: number): void {
  const d = m.comparison.difference;
  const n = d.length;
  const x = scaleBand<number>().domain(d.map((_, i) => i)).range([MARGIN.left, width - MARGIN.right]).padding(0.2);
  const extent = Math.max(...d.map(Math.abs), 1e-12);
  const y = scaleLinear().domain([-extent, extent]).nice().range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const root = select(svg);
  axes(root, x, y, width, m.layers, n);
  root.append("line").attr("class", "zero-line").attr("x1", MARGIN.left).attr("x2", width - MARGIN.right).attr("y1", y(0)).attr("y2", y(0));
  root.append("g").selectAll("rect").data(d.map((v, i) => ({ v, i }))).join("rect")
    .attr("class", (e) => `bar ${e.v >= 0 ? "increase" : "decrease"}`)
    .attr("x", (e) => x(e.i) ?? 0)
    .attr("width", x.bandwidth())
    .attr("y", (e) => y(Math.max(0, e.v)))
    .attr("height", (e) => Math.abs(y(e.v) - y(0)))
    .append("title").text((e) => `Layer ${m.layers[e.i] ?? e.i}: comparison − primary = ${e.v}`);
  svg.setAttribute("aria-label", "Per-layer importance difference, comparison minus primary");
}

function axes(
  root: ReturnType<typeof select<SVGSVGElement, unknown>>,
  x: ReturnType<typeof scaleBand<number>>,
  y: ReturnType<typeof scaleLinear<number, number>>,
  width: number,
  layers: readonly number[],
  n: number,
): void {
  const stride = Math.max(1, Math.ceil(n / Math.floor((width - MARGIN.left) / 28)));
  root.append("g").attr("class", "axis").attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`)
    .call(axisBottom(x).tickValues(x.domain().filter((i) => i % stride === 0)).tickFormat((i) => String(layers[i] ?? i)));
  root.append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(5).tickFormat((v) => compactValue(Number(v))));
  root.append("text").attr("class", "axis-title").attr("x", (MARGIN.left + width - MARGIN.right) / 2).attr("y", HEIGHT - 4).attr("text-anchor", "middle").text("layer");
}
