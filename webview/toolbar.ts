/** The heatmap toolbar: target module, colour scale and cell width; plus the panel's header actions. */
import { ALL_MODULES } from "../extension/viewModel/heatmapData";
import { HEATMAP_ZOOMS, type HeatmapZoom } from "../extension/viewModel/heatmapLayout";
import type { ScaleKind } from "../extension/viewModel/valueScale";
import { h } from "./dom";
import { radioGroup, type RadioGroup } from "./radioGroup";

/** A vscode-elements select: value is the chosen option's value. */
type SelectElement = HTMLElement & { value: string };

/** What the toolbar reports back. */
export interface ToolbarEvents {
  onModule(module: string): void;
  onScale(scale: ScaleKind): void;
  onZoom(zoom: HeatmapZoom): void;
}

/** The heatmap toolbar; owns its DOM under `root`. */
export class HeatmapToolbar {
  readonly root: HTMLElement;
  private readonly module: SelectElement;
  private readonly scale: RadioGroup<ScaleKind>;
  private readonly zoom: SelectElement;
  private modulesKey = "";

  /** Builds the controls and wires them to `events`. */
  constructor(events: ToolbarEvents) {
    this.module = h("vscode-single-select", { className: "module-select", attrs: { id: "module-select", "aria-label": "Target module" } }) as SelectElement;
    this.module.addEventListener("change", () => events.onModule(this.module.value));
    this.scale = radioGroup<ScaleKind>("scale", "Colour scale", [{ value: "linear", label: "Linear" }, { value: "log", label: "Log" }], (scale) => events.onScale(scale), "scale-toggle");
    this.zoom = h("vscode-single-select", { className: "zoom-select", attrs: { id: "zoom-select", "aria-label": "Cell width" } },
      HEATMAP_ZOOMS.map((z) => h("vscode-option", { attrs: { value: String(z) }, text: z === "fit" ? "Fit width" : `${z} px per token` }))) as SelectElement;
    this.zoom.addEventListener("change", () => {
      const z = this.zoom.value === "fit" ? "fit" : Number(this.zoom.value);
      if ((HEATMAP_ZOOMS as readonly unknown[]).includes(z)) events.onZoom(z as HeatmapZoom);
    });
    this.root = h("div", { className: "toolbar" }, [
      h("label", { className: "field" }, [h("span", { text: "Module" }), this.module]),
      h("div", { className: "field" }, [h("span", { text: "Scale" }), this.scale.root]),
      h("label", { className: "field" }, [h("span", { text: "Cell width" }), this.zoom]),
    ]);
  }

  /** Shows the profile's modules and the current choices. */
  update(modules: readonly string[], module: string, scale: ScaleKind, zoom: HeatmapZoom): void {
    const key = modules.join("\u0000");
    if (key !== this.modulesKey) {
      this.modulesKey = key;
      this.module.replaceChildren(
        h("vscode-option", { attrs: { value: ALL_MODULES }, text: "All modules (sum)" }),
        ...modules.map((m) => h("vscode-option", { attrs: { value: m }, text: m })),
      );
    }
    if (this.module.value !== module) this.module.value = module;
    if (this.zoom.value !== String(zoom)) this.zoom.value = String(zoom);
    this.scale.set(scale);
  }
}
