/**
 * The "loss vs LoRA parameters" chart: every measured candidate of a sweep (SVG via d3), the base model and the
 * full adapter as reference lines, and a ring on the point the current threshold builds. Below it, what the
 * evaluation is doing, with "Evaluate thresholds" (or "Evaluate again") and Cancel.
 */
import { axisBottom, axisLeft } from "d3-axis";
import { scaleLinear } from "d3-scale";
import { select } from "d3-selection";
import { line } from "d3-shape";
import { compactValue, groupedInteger, percent } from "../extension/viewModel/format";
import { lossText, type SweepChartModel } from "../extension/viewModel/sweepChart";
import { h } from "./dom";

const MARGIN = { top: 16, right: 12, bottom: 34, left: 52 };
const HEIGHT = 200;

/** What the view reports back to the panel. */
export interface SweepViewEvents {
  onEvaluate(): void;
  onCancel(): void;
}

/** The evaluation's state, as the panel knows it. */
export type EvaluationState = { kind: "idle"; message?: string } | { kind: "running"; fraction: number; message: string };

/** The sweep chart's figure with its status line and buttons; owns its DOM under `root`. */
export class SweepView {
  readonly root: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly status: HTMLParagraphElement;
  private readonly evaluate: HTMLElement;
  private readonly cancel: HTMLElement;
  private model: SweepChartModel | undefined;
  private width = 400;

  /** Builds the empty figure. */
  constructor(events: SweepViewEvents) {
    this.svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.svg.classList.add("chart", "sweep-chart");
    this.svg.setAttribute("role", "img");
    this.status = h("p", { className: "sweep-status", attrs: { role: "status" } });
    this.evaluate = h("vscode-button", { className: "evaluate-thresholds", text: "Evaluate thresholds", attrs: { secondary: "" } });
    this.evaluate.addEventListener("click", () => {
      if (!this.evaluate.hasAttribute("disabled")) events.onEvaluate();
    });
    this.cancel = h("vscode-button", { className: "cancel-evaluation", text: "Cancel", attrs: { secondary: "" } });
    this.cancel.addEventListener("click", () => events.onCancel());
    this.root = h("figure", { className: "chart-figure sweep-figure" }, [
      h("figcaption", { text: "Loss vs LoRA parameters, before retraining" }),
      this.svg,
      this.status,
      h("div", { className: "button-row" }, [this.evaluate, this.cancel]),
    ]);
    this.show(undefined, { kind: "idle" });
  }

  /** Shows a sweep (or none yet for this mode) and the evaluation's state. */
  show(model: SweepChartModel | undefined, state: EvaluationState): void {
    this.model = model;
    const running = state.kind === "running";
    this.cancel.hidden = !running;
    if (running) this.evaluate.setAttribute("disabled", "");
    else this.evaluate.removeAttribute("disabled");
    this.evaluate.textContent = model ? "Evaluate again" : "Evaluate thresholds";
    this.status.textContent = running
      ? `Evaluating thresholds… ${percent(state.fraction)} ${state.message}`
      : state.message ?? (model ? "" : "No sweep yet: measure the loss of the adapter every threshold builds, on the profile's data, before any retraining.");
    this.svg.classList.toggle("empty", !model);
    this.render();
  }

  /** Redraws at `width` pixels. */
  resize(width: number): void {
    this.width = width;
    this.render();
  }

  private render(): void {
    const svg = this.svg;
    const m = this.model;
    const width = this.width;
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", m ? String(HEIGHT) : "0");
    svg.setAttribute("viewBox", `0 0 ${width} ${m ? HEIGHT : 0}`);
    svg.replaceChildren();
    if (!m) return;
    const x = scaleLinear().domain(m.x).nice().range([MARGIN.left, width - MARGIN.right]);
    const y = scaleLinear().domain(m.y).range([HEIGHT - MARGIN.bottom, MARGIN.top]);
    const root = select(svg);
    root.append("g").attr("class", "axis").attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`).call(axisBottom(x).ticks(Math.max(2, Math.floor(width / 90))).tickFormat((v) => compactValue(Number(v))));
    root.append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(5).tickFormat(y.tickFormat(5)));
    root.append("text").attr("class", "axis-title").attr("x", (MARGIN.left + width - MARGIN.right) / 2).attr("y", HEIGHT - 4).attr("text-anchor", "middle").text("LoRA parameters");
    // Reference lines: no LoRA at all, and the adapter as it is. Small adapters lose most (points near the base
    // line on the left), large ones approach the full adapter (on the right): each label goes to the other end.
    for (const [cls, value, label, atRight] of [["base", m.base, "base model", true], ["full", m.full, "full adapter", false]] as const) {
      root.append("line").attr("class", `ref-line ${cls}`).attr("data-loss", String(value))
        .attr("x1", x.range()[0]!).attr("x2", x.range()[1]!).attr("y1", y(value)).attr("y2", y(value));
      root.append("text").attr("class", `ref-label ${cls}`).attr("x", atRight ? x.range()[1]! - 2 : x.range()[0]! + 4).attr("y", y(value) - 3)
        .attr("text-anchor", atRight ? "end" : "start").text(`${label} ${lossText(value)}`);
    }
    root.append("path").attr("class", "sweep-line").attr("d", line<{ params: number; loss: number }>().x((p) => x(p.params)).y((p) => y(p.loss))(m.points) ?? "");
    root.append("g").selectAll("circle").data(m.points).join("circle")
      .attr("class", (p) => `sweep-point${p.current ? " current" : ""}`)
      .attr("data-threshold", (p) => String(p.threshold))
      .attr("data-params", (p) => String(p.params))
      .attr("data-loss", (p) => String(p.loss))
      .attr("cx", (p) => x(p.params))
      .attr("cy", (p) => y(p.loss))
      .attr("r", m.points.length > 40 ? 2.5 : 4)
      .append("title").text((p) => `T up to ${p.threshold.toFixed(3)}: ${p.kept} kept, ${groupedInteger(p.params)} LoRA parameters, loss ${lossText(p.loss)}${p.accuracy !== undefined ? `, accuracy ${percent(p.accuracy)}` : ""}`);
    const current = m.current === undefined ? undefined : m.points[m.current];
    if (current) {
      // A ring around the measured point the slider's threshold builds, and a guide down to its parameter count.
      root.append("line").attr("class", "sweep-guide").attr("x1", x(current.params)).attr("x2", x(current.params)).attr("y1", y(current.loss)).attr("y2", HEIGHT - MARGIN.bottom);
      root.append("circle").attr("class", "sweep-marker").attr("data-threshold", String(current.threshold)).attr("cx", x(current.params)).attr("cy", y(current.loss)).attr("r", 8);
    }
    svg.setAttribute("aria-label", `Loss of ${m.points.length} pruned adapters against their LoRA parameters; base model ${lossText(m.base)}, full adapter ${lossText(m.full)}` +
      (current ? `; the current threshold builds the one with ${groupedInteger(current.params)} parameters, loss ${lossText(current.loss)}.` : "."));
  }
}
