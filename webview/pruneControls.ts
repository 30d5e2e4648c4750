/**
 * The LoRA-drop controls: threshold slider, share/drop mode, the resulting parameter counts, and the
 * "Apply drop-and-share" button that asks the host to prune.
 */
import { groupedInteger, percent } from "../extension/viewModel/format";
import type { LayerSelection, ParameterCounts } from "../extension/viewModel/layerSelection";
import { h } from "./dom";
import { radioGroup, type RadioGroup } from "./radioGroup";
import type { PruneMode } from "../extension/core/adapter/dropRecord";

/** What the controls report back to the panel. */
export interface PruneControlEvents {
  onThreshold(threshold: number): void;
  onMode(mode: PruneMode): void;
  onApply(): void;
}

/** Slider granularity: thresholds are chosen in steps of 0.01 between 0.01 and 1. */
const STEP = 0.01;

/** The controls block; owns its DOM under `root`. */
export class PruneControls {
  readonly root: HTMLElement;
  private readonly slider: HTMLInputElement;
  private readonly value: HTMLOutputElement;
  private readonly mode: RadioGroup<PruneMode>;
  private readonly summary: HTMLParagraphElement;
  private readonly params: HTMLParagraphElement;
  private readonly loss: HTMLParagraphElement;
  private readonly apply: HTMLElement;
  private readonly status: HTMLParagraphElement;

  /** Builds the controls and wires their events to `events`. */
  constructor(events: PruneControlEvents) {
    this.slider = h("input", { className: "threshold-slider", attrs: { type: "range", id: "threshold", min: String(STEP), max: "1", step: String(STEP) } });
    this.value = h("output", { className: "threshold-value", attrs: { for: "threshold" } });
    this.slider.addEventListener("input", () => events.onThreshold(Number(this.slider.value)));
    this.mode = radioGroup<PruneMode>("prune-mode", "What happens to the other layers", [
      { value: "share", label: "Share one LoRA among the other layers" },
      { value: "drop", label: "Drop their LoRA" },
    ], (mode) => events.onMode(mode), "prune-mode");
    this.summary = h("p", { className: "prune-summary", attrs: { "aria-live": "polite" } });
    this.params = h("p", { className: "prune-params" });
    this.loss = h("p", { className: "prune-loss", attrs: { "aria-live": "polite" } });
    this.apply = h("vscode-button", { className: "apply-prune", text: "Apply drop-and-share" });
    this.apply.addEventListener("click", () => {
      if (!this.apply.hasAttribute("disabled")) events.onApply();
    });
    this.status = h("p", { className: "prune-status", attrs: { role: "status" } });
    // Laid out as a bar (panel.css): inputs and outcome on the left, the button on the right, status below.
    this.root = h("div", { className: "prune-controls" }, [
      h("div", { className: "prune-inputs" }, [
        h("div", { className: "threshold-row" }, [h("label", { text: "Threshold T", attrs: { for: "threshold" } }), this.slider, this.value]),
        this.mode.root,
      ]),
      h("div", { className: "prune-outcome" }, [this.summary, this.params, this.loss]),
      h("div", { className: "apply-row" }, [this.apply]),
      this.status,
    ]);
  }

  /** Shows the threshold, mode, the selection and counts they lead to, and (from a sweep) the measured loss. */
  update(threshold: number, mode: PruneMode, selection: LayerSelection, counts: ParameterCounts, layers: readonly number[], lossSummary = ""): void {
    if (Number(this.slider.value) !== threshold) this.slider.value = String(threshold);
    this.value.textContent = threshold.toFixed(2);
    this.mode.set(mode);
    // Layers without any LoRA take no part: "n" counts the layers LoRA-drop chooses among.
    const n = selection.order.length;
    const k = selection.keptCount;
    const reached = selection.cumulative[k - 1] ?? 0;
    const keptList = selection.order.slice(0, k).map((i) => layers[i] ?? i).sort((a, b) => a - b).join(", ");
    const other = mode === "share" ? "share one LoRA" : "lose their LoRA";
    this.summary.textContent = n > 0 && reached === 0
      // All importances zero: the threshold is never reached, so the engine keeps every layer (nothing to prune on).
      ? `All importances are zero, so LoRA-drop keeps all ${n} layers: there is no evidence to prune on.`
      : `Keep ${k} of ${n} layers (cumulative importance ${reached.toFixed(3)}): ${keptList}. The other ${n - k} ${other}.`;
    this.params.replaceChildren(
      "LoRA parameters: ",
      h("strong", { text: groupedInteger(counts.before) }),
      " → ",
      h("strong", { text: groupedInteger(counts.after) }),
      ` (−${percent(counts.reduction)})`,
    );
    this.loss.textContent = lossSummary;
    this.loss.hidden = lossSummary === "";
    this.apply.textContent = mode === "share" ? "Apply drop-and-share" : "Apply drop";
    this.slider.setAttribute("aria-valuetext", `${threshold.toFixed(2)}: keep ${k} of ${n} layers`);
  }

  /** Disables the button while a prune request is in flight and shows `message`. */
  setBusy(busy: boolean, message: string): void {
    if (busy) this.apply.setAttribute("disabled", "");
    else this.apply.removeAttribute("disabled");
    this.status.textContent = message;
  }
}
