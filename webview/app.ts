/**
 * The panel: holds the state, turns host messages into view updates, and user actions into messages.
 * Views are dumb; every derived number (kept layers, parameter counts, comparison) is computed here once
 * per change from the pure modules in extension/viewModel, so all views show the same selection.
 */
import type { ProfileFile } from "../extension/core/importance/profileSchema";
import { parseHostMessage, type HostToWebview, type WebviewToHost } from "../extension/viewModel/protocol";
import { compareImportance } from "../extension/viewModel/compare";
import { groupedInteger, runSummary } from "../extension/viewModel/format";
import { countParameters, keptPositions, layerStatus, selectForProfile, type LayerSelection } from "../extension/viewModel/layerSelection";
import { appendLoss, emptyLossSeries, type LossSeries } from "../extension/viewModel/lossSeries";
import { applySettings, fitStateToProfile, sanitizeState, type PanelState } from "../extension/viewModel/panelState";
import { CompareView } from "./compareView";
import { h } from "./dom";
import { chartsSvgContent, exportMessage, heatmapCsvContent, heatmapPngContent, importanceCsvContent, type ExportContext } from "./exporter";
import { HeatmapView } from "./heatmapView";
import { ImportanceView } from "./importanceView";
import { PruneControls } from "./pruneControls";
import { radioGroup, type RadioGroup } from "./radioGroup";
import { SequenceList } from "./sequenceList";
import { watchTheme } from "./theme";
import { HeatmapToolbar } from "./toolbar";
import { TrainingView } from "./trainingView";
import { SweepView, type EvaluationState } from "./sweepView";
import { measuredPointIndex, sweepChartModel, sweepSummary } from "../extension/viewModel/sweepChart";
import type { SweepFile } from "../extension/core/sweep/sweepSchema";
import type { PruneMode } from "../extension/core/adapter/dropRecord";
import type { HostBridge } from "./vscodeApi";

/** A loaded profile and where it came from. */
interface LoadedProfile {
  profile: ProfileFile;
  sourcePath: string;
}

/** A read-only view of the panel's state for tests and debugging (window.__loraDropPanel). */
export interface PanelSnapshot {
  state: PanelState;
  hasProfile: boolean;
  hasCompare: boolean;
  keptLayers: number[];
  paramsBefore: number;
  paramsAfter: number;
  lossPoints: number;
  /** Points of the sweep shown for the current mode (0 without one). */
  sweepPoints: number;
  /** The threshold of the measured point the slider's threshold builds, or null. */
  sweepMarker: number | null;
  evaluating: boolean;
}

/** The whole panel, mounted into `mount`. */
export class LoraDropPanel {
  private state: PanelState;
  private primary: LoadedProfile | undefined;
  private compare: LoadedProfile | undefined;
  private loss: LossSeries = emptyLossSeries();
  private selection: LayerSelection | undefined;
  private nextRequestId = 1;
  private readonly pending = new Map<number, "prune" | "export">();
  private stateTimer: ReturnType<typeof setTimeout> | undefined;
  private counts = { before: 0, after: 0, reduction: 0 };
  /** The primary profile's sweeps, by the mode they were measured in. */
  private readonly sweeps = new Map<PruneMode, SweepFile>();
  private evaluation: EvaluationState = { kind: "idle" };
  private sweepMarker: number | null = null;

  private readonly header = h("p", { className: "profile-info" });
  private readonly banner = h("div", { className: "banner", attrs: { role: "alert" } });
  private readonly toolbar: HeatmapToolbar;
  private readonly sequences: SequenceList;
  private readonly heatmap: HeatmapView;
  private readonly sweepView = new SweepView({
    onEvaluate: () => this.evaluateThresholds(),
    onCancel: () => this.post({ type: "cancelEvaluation" }),
  });
  private readonly importance = new ImportanceView(this.sweepView);
  private readonly prune: PruneControls;
  private readonly compareView = new CompareView();
  private readonly compareHint = h("p", { className: "hint", text: "Load a second profile (e.g. after training, or the gradient criterion) to compare layer importance." });
  private readonly compareToggle: RadioGroup<PanelState["compareView"]>;
  private readonly training = new TrainingView();
  private readonly exportStatus = h("span", { className: "export-status", attrs: { role: "status" } });
  private readonly placeholder = h("p", { className: "placeholder", text: "Waiting for a LoRA-drop profile… Run “LoRA-drop: Profile” or open a .profile.json file." });
  /** Sections that need a primary profile; hidden until one arrives. */
  private profileSections: HTMLElement[] = [];

  /** Builds the panel's DOM inside `mount` and restores the saved view state. */
  constructor(private readonly mount: HTMLElement, private readonly host: HostBridge) {
    this.state = sanitizeState(host.loadState());
    this.toolbar = new HeatmapToolbar({
      onModule: (module) => this.setState({ module, pinned: null }),
      onScale: (scale) => this.setState({ scale }),
      onZoom: (zoom) => this.setState({ zoom }),
    });
    this.sequences = new SequenceList((sequence) => this.setState({ sequence, pinned: null }), (filter) => this.setState({ filter }, false));
    this.heatmap = new HeatmapView((pinned) => this.setState({ pinned }));
    // A threshold or mode chosen here outlives later changes of the settings (see applySettings).
    this.prune = new PruneControls({
      onThreshold: (threshold) => this.setState({ threshold, thresholdChosen: true }),
      onMode: (mode) => this.setState({ mode, modeChosen: true }),
      onApply: () => this.applyPrune(),
    });
    this.compareToggle = radioGroup<PanelState["compareView"]>("compare-view", "Comparison view", [
      { value: "sideBySide", label: "Side by side" },
      { value: "difference", label: "Difference" },
    ], (compareView) => this.setState({ compareView }));
    this.buildLayout();
    window.addEventListener("message", (e: MessageEvent) => this.onMessage(e.data));
    watchTheme(() => {
      this.heatmap.themeChanged();
      this.render();
    });
    Object.defineProperty(window, "__loraDropPanel", { get: () => this.snapshot(), configurable: false });
  }

  private buildLayout(): void {
    const button = (text: string, action: () => void, secondary = true): HTMLElement => {
      const b = h("vscode-button", { text, attrs: secondary ? { secondary: "" } : {} });
      b.addEventListener("click", action);
      return b;
    };
    const section = (id: string, title: string, children: HTMLElement[], className = "section"): HTMLElement =>
      h("section", { className, attrs: { "aria-labelledby": id } }, [h("h2", { text: title, attrs: { id } }), ...children]);
    this.profileSections = [
      section("h-heatmap", "LoRA output magnitude per token", [this.toolbar.root, h("div", { className: "heatmap-layout" }, [this.sequences.root, this.heatmap.root])], "section heatmap-section"),
      section("h-importance", "Layer importance and LoRA-drop", [this.importance.root]),
      // Its own block right under the charts, sticky at the bottom of the view (panel.css): the threshold, what it
      // keeps and the Apply button stay in sight however far down the heatmap or the charts reach.
      h("section", { className: "control-bar", attrs: { "aria-label": "LoRA-drop threshold" } }, [this.prune.root]),
      section("h-export", "Export", [
        h("div", { className: "button-row" }, [
          button("Heatmap PNG", () => this.export("png", "heatmap")),
          button("Heatmap CSV", () => this.export("csv", "heatmap")),
          button("Importance CSV", () => this.export("csv", "importance")),
          button("Importance SVG", () => this.export("svg", "importance")),
          this.exportStatus,
        ]),
      ]),
      section("h-compare", "Comparison", [
        h("div", { className: "button-row" }, [button("Load profile to compare…", () => this.post({ type: "pickCompareProfile" })), this.compareToggle.root]),
        this.compareHint,
        this.compareView.root,
      ]),
    ];
    this.mount.replaceChildren(
      h("header", { className: "panel-header" }, [h("h1", { text: "LoRA-drop" }), this.header, this.placeholder]),
      this.banner,
      ...this.profileSections,
      section("h-training", "Training", [this.training.root]),
    );
    for (const el of this.profileSections) el.hidden = true;
    this.mount.removeAttribute("aria-busy");
    this.banner.hidden = true;
    this.compareView.root.hidden = true;
  }

  /** Handles one message from the host; invalid ones are reported and ignored. */
  onMessage(data: unknown): void {
    const msg = parseHostMessage(data);
    if (!msg) {
      this.post({ type: "webviewError", message: `Ignored an invalid message from the host (type ${describeType(data)}).` });
      return;
    }
    this.handle(msg);
  }

  private handle(msg: HostToWebview): void {
    switch (msg.type) {
      case "settings": {
        const next = applySettings(this.state, msg);
        if (next.threshold === this.state.threshold && next.mode === this.state.mode) return;
        this.state = next;
        this.host.saveState(this.state);
        // The host's commands prune with the panel's choice: tell it, once a profile makes the choice meaningful.
        if (this.primary) this.scheduleStateMessage();
        break;
      }
      case "profile":
        if (msg.slot === "primary") {
          this.primary = { profile: msg.profile, sourcePath: msg.sourcePath };
          // Sweeps belong to one profile run; the host sends this profile's own after it.
          this.sweeps.clear();
          this.state = fitStateToProfile(this.state, msg.profile);
          this.heatmap.invalidate();
          this.banner.hidden = true;
          // The threshold may come from restored state: tell the host, whose commands prune with it.
          this.scheduleStateMessage();
        } else {
          this.compare = { profile: msg.profile, sourcePath: msg.sourcePath };
        }
        break;
      case "clearCompare":
        this.compare = undefined;
        break;
      case "sweep":
        this.sweeps.set(msg.sweep.mode, msg.sweep);
        // A sweep on screen replaces any note about an earlier evaluation that did not finish.
        if (this.evaluation.kind === "idle") this.evaluation = { kind: "idle" };
        break;
      case "clearSweeps":
        this.sweeps.clear();
        break;
      case "sweepProgress":
        // Progress only touches the sweep's figure: the rest of the panel is unchanged.
        this.evaluation = { kind: "running", fraction: msg.fraction, message: msg.message };
        if (this.primary) this.renderSweep(this.primary.profile);
        return;
      case "sweepDone":
        this.evaluation = msg.outcome === "completed" ? { kind: "idle" } : { kind: "idle", message: `Evaluation ${msg.outcome}${msg.message ? `: ${msg.message}` : "."}` };
        break;
      case "trainProgress":
        this.loss = appendLoss(this.loss, msg);
        this.training.update(this.loss);
        return;
      case "trainDone":
        this.training.finish(msg.outcome, msg.message);
        return;
      case "pruneResult":
        this.pending.delete(msg.requestId);
        this.prune.setBusy(false, `Pruned adapter saved to ${msg.outputPath}: kept layers ${msg.keptLayers.join(", ")}; ${groupedInteger(msg.paramsBefore)} → ${groupedInteger(msg.paramsAfter)} parameters.`);
        return;
      case "exportDone":
        this.pending.delete(msg.requestId);
        this.exportStatus.textContent = msg.savedPath ? `Saved ${msg.savedPath}` : "Export cancelled.";
        return;
      case "error":
        this.showError(msg.message, msg.requestId);
        return;
    }
    this.render();
  }

  private showError(message: string, requestId: number | undefined): void {
    const kind = requestId === undefined ? undefined : this.pending.get(requestId);
    if (requestId !== undefined) this.pending.delete(requestId);
    if (kind === "prune") this.prune.setBusy(false, `Prune failed: ${message}`);
    else if (kind === "export") this.exportStatus.textContent = `Export failed: ${message}`;
    else {
      this.banner.textContent = message;
      this.banner.hidden = false;
    }
  }

  private setState(patch: Partial<PanelState>, rerender = true): void {
    const before = this.state;
    this.state = { ...this.state, ...patch };
    this.host.saveState(this.state);
    if (patch.threshold !== undefined || patch.mode !== undefined) this.scheduleStateMessage();
    if (rerender && JSON.stringify(before) !== JSON.stringify(this.state)) this.render();
  }

  /** Tells the host about threshold/mode changes, at most every 250 ms while the slider moves. */
  private scheduleStateMessage(): void {
    if (this.stateTimer !== undefined) clearTimeout(this.stateTimer);
    this.stateTimer = setTimeout(() => this.post({ type: "stateChanged", threshold: this.state.threshold, mode: this.state.mode }), 250);
  }

  private render(): void {
    const p = this.primary;
    if (!p) return;
    this.placeholder.hidden = true;
    for (const el of this.profileSections) el.hidden = false;
    const s = this.state;
    const profile = p.profile;
    this.selection = selectForProfile(profile, s.threshold);
    const status = layerStatus(this.selection);
    this.counts = countParameters(profile.adapter.params, profile.modules, this.selection.kept, s.mode);
    this.header.replaceChildren(
      h("span", { className: "source-path", text: baseName(p.sourcePath), attrs: { title: p.sourcePath } }),
      ` · ${profile.model.architecture}, ${profile.layers.length} layers · LoRA r=${profile.adapter.r} on ${profile.modules.join(", ")} · criterion ${profile.criterion} · ${profile.sequences.length} sequences · ${runSummary(profile)}`,
    );
    this.toolbar.update(profile.modules, s.module, s.scale, s.zoom);
    this.sequences.update(profile.sequences, s.sequence, s.filter);
    this.heatmap.update({ profile, module: s.module, sequence: s.sequence, scale: s.scale, zoom: s.zoom, status, pinned: s.pinned });
    const otherLabel = s.mode === "share" ? "shared" : "dropped";
    this.importance.update({ layers: profile.layers, importance: profile.importance.per_layer, selection: this.selection, threshold: s.threshold, otherLabel, status });
    this.prune.update(s.threshold, s.mode, this.selection, this.counts, profile.layers, this.renderSweep(profile));
    this.renderCompare(profile);
  }

  /** Draws the sweep of the current mode with the point the threshold builds; returns the readout for the controls. */
  private renderSweep(profile: ProfileFile): string {
    const { mode, threshold } = this.state;
    const sweep = this.sweeps.get(mode);
    const at = sweep ? measuredPointIndex(sweep, profile, threshold) : undefined;
    const point = sweep && at !== undefined ? sweep.points[at] : undefined;
    this.sweepMarker = point ? point.threshold : null;
    this.sweepView.show(sweep ? sweepChartModel(sweep, at) : undefined, this.evaluation);
    return sweepSummary(sweep, point, mode);
  }

  private renderCompare(profile: ProfileFile): void {
    const c = this.compare;
    this.compareHint.hidden = c !== undefined;
    this.compareView.root.hidden = c === undefined;
    this.compareToggle.root.hidden = c === undefined;
    this.compareToggle.set(this.state.compareView);
    if (!c || !this.primary) return;
    this.compareView.update({
      comparison: compareImportance(profile, c.profile, this.state.threshold),
      view: this.state.compareView,
      primaryLabel: `${baseName(this.primary.sourcePath)} (${profile.criterion})`,
      compareLabel: `${baseName(c.sourcePath)} (${c.profile.criterion})`,
      layers: profile.layers,
    });
  }

  private applyPrune(): void {
    if (!this.primary || !this.selection) return;
    const requestId = this.nextRequestId++;
    this.pending.set(requestId, "prune");
    this.prune.setBusy(true, `Pruning with T = ${this.state.threshold.toFixed(2)} (${this.state.mode})…`);
    this.post({ type: "applyPrune", requestId, threshold: this.state.threshold, mode: this.state.mode });
  }

  private evaluateThresholds(): void {
    if (!this.primary || this.evaluation.kind === "running") return;
    this.evaluation = { kind: "running", fraction: 0, message: "starting…" };
    this.post({ type: "evaluateThresholds", mode: this.state.mode });
    this.render();
  }

  private export(format: "csv" | "png" | "svg", what: "heatmap" | "importance"): void {
    const p = this.primary;
    if (!p || !this.selection) return;
    const ctx: ExportContext = { profile: p.profile, sourcePath: p.sourcePath, module: this.state.module, sequence: this.state.sequence, threshold: this.state.threshold, mode: this.state.mode, status: layerStatus(this.selection) };
    let content: string;
    if (format === "csv") content = what === "heatmap" ? heatmapCsvContent(ctx) : importanceCsvContent(ctx);
    // The sweep chart joins the export once it has a sweep to show (it is empty, 0 px high, before).
    else if (format === "svg") content = chartsSvgContent(Array.from(this.importance.root.querySelectorAll<SVGSVGElement>("svg.chart")).filter((c) => Number(c.getAttribute("height")) > 0));
    else {
      const parts = this.heatmap.exportParts();
      if (!parts) {
        this.exportStatus.textContent = "Nothing to export: this profile has no per-token norms.";
        return;
      }
      content = heatmapPngContent(ctx, parts.image, parts.theme, this.heatmap.root.querySelector<HTMLCanvasElement>("canvas.legend-canvas"));
    }
    const requestId = this.nextRequestId++;
    this.pending.set(requestId, "export");
    this.exportStatus.textContent = "Saving…";
    this.post(exportMessage(requestId, format, ctx, what, content));
  }

  private post(message: WebviewToHost): void {
    this.host.post(message);
  }

  private snapshot(): PanelSnapshot {
    return {
      state: { ...this.state, pinned: this.state.pinned ? { ...this.state.pinned } : null },
      hasProfile: this.primary !== undefined,
      hasCompare: this.compare !== undefined,
      keptLayers: this.selection ? keptPositions(this.selection.kept) : [],
      paramsBefore: this.counts.before,
      paramsAfter: this.counts.after,
      lossPoints: this.loss.points.length,
      sweepPoints: this.sweeps.get(this.state.mode)?.points.length ?? 0,
      sweepMarker: this.sweepMarker,
      evaluating: this.evaluation.kind === "running",
    };
  }
}

function baseName(path: string): string {
  return path.split(/[/\\]/).pop() || path;
}

function describeType(data: unknown): string {
  const t = typeof data === "object" && data !== null ? (data as { type?: unknown }).type : undefined;
  return typeof t === "string" ? JSON.stringify(t.slice(0, 40)) : typeof data;
}
