/** The live training view: loss curve and the latest step, learning rate and throughput. */
import { axisBottom, axisLeft } from "d3-axis";
import { scaleLinear } from "d3-scale";
import { select } from "d3-selection";
import { line } from "d3-shape";
import { compactValue, groupedInteger } from "../extension/viewModel/format";
import { thinLoss, type LossSeries } from "../extension/viewModel/lossSeries";
import { h } from "./dom";

const MARGIN = { top: 12, right: 16, bottom: 32, left: 52 };
const HEIGHT = 200;
/** Loss points drawn at most (about twice this): min/max per bucket keeps spikes visible. */
const BUCKETS = 400;

/** The training section; owns its DOM under `root`. */
export class TrainingView {
  readonly root: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly stats: HTMLParagraphElement;
  private readonly bar: HTMLDivElement;
  private readonly track: HTMLDivElement;
  private readonly status: HTMLParagraphElement;
  private series: LossSeries | undefined;
  private frameRequested = false;

  /** Builds the empty view. */
  constructor() {
    this.svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.svg.classList.add("chart", "loss-chart");
    this.svg.setAttribute("role", "img");
    this.stats = h("p", { className: "train-stats", attrs: { "aria-live": "off" } });
    this.bar = h("div", { className: "train-progress-fill" });
    this.status = h("p", { className: "train-status", attrs: { role: "status" }, text: "No training run yet. Start one with the “LoRA-drop: Train” command." });
    this.track = h("div", { className: "train-progress", attrs: { role: "presentation" } }, [this.bar]);
    this.track.hidden = true;
    this.svg.classList.add("empty");
    this.root = h("div", { className: "training" }, [
      this.status,
      this.track,
      this.stats,
      this.svg,
    ]);
    new ResizeObserver(() => this.requestFrame()).observe(this.root);
  }

  /** Shows `series`; redraws at most once per animation frame however fast steps arrive. */
  update(series: LossSeries): void {
    this.series = series;
    this.status.textContent = "Training…";
    this.track.hidden = false;
    this.svg.classList.remove("empty");
    this.requestFrame();
  }

  /** Shows how the run ended. */
  finish(outcome: "completed" | "cancelled" | "failed", message: string | undefined): void {
    const word = { completed: "Training completed.", cancelled: "Training cancelled.", failed: "Training failed." }[outcome];
    this.status.textContent = message ? `${word} ${message}` : word;
  }

  private requestFrame(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.render();
    });
  }

  private render(): void {
    const s = this.series;
    if (!s || s.points.length === 0) return;
    const last = s.points[s.points.length - 1] as { step: number; loss: number };
    const fraction = s.totalSteps > 0 ? Math.min(1, last.step / s.totalSteps) : 0;
    this.bar.style.width = `${(fraction * 100).toFixed(1)}%`;
    this.stats.textContent = `Step ${groupedInteger(last.step)} / ${groupedInteger(s.totalSteps)} · loss ${last.loss.toPrecision(4)} · lr ${compactValue(s.lastLr)} · ${groupedInteger(s.lastTokensPerSecond)} tokens/s`;
    const width = Math.max(300, (this.root.clientWidth || 800) - 8);
    const points = thinLoss(s.points, BUCKETS);
    const losses = points.map((p) => p.loss);
    const x = scaleLinear().domain([0, Math.max(1, s.totalSteps)]).range([MARGIN.left, width - MARGIN.right]);
    const y = scaleLinear().domain([Math.min(...losses), Math.max(...losses)]).nice().range([HEIGHT - MARGIN.bottom, MARGIN.top]);
    this.svg.setAttribute("width", String(width));
    this.svg.setAttribute("height", String(HEIGHT));
    this.svg.replaceChildren();
    const root = select(this.svg);
    root.append("g").attr("class", "axis").attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`).call(axisBottom(x).ticks(6));
    root.append("g").attr("class", "axis").attr("transform", `translate(${MARGIN.left},0)`).call(axisLeft(y).ticks(5).tickFormat((v) => compactValue(Number(v))));
    root.append("text").attr("class", "axis-title").attr("x", (MARGIN.left + width - MARGIN.right) / 2).attr("y", HEIGHT - 2).attr("text-anchor", "middle").text("step");
    root.append("path").attr("class", "loss-line").attr("d", line<{ step: number; loss: number }>().x((p) => x(p.step)).y((p) => y(p.loss))(points) ?? "");
    this.svg.setAttribute("aria-label", `Training loss over ${s.points.length} steps; latest ${last.loss.toPrecision(4)}`);
    this.svg.dataset.points = String(s.points.length);
  }
}
