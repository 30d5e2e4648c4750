/**
 * The host side of the heatmap panel without VS Code: which profiles it shows, the handshake, the training
 * curve to replay after a reload, and what each validated webview message does. The VS Code panel class
 * (panel.ts) only moves messages between this and the webview, so the message handling and its path-safety
 * rules are unit-tested under plain Node.
 */
import * as path from "node:path";
import { writeFileAtomic } from "../core/io/atomicWrite";
import type { Logger } from "../core/util/progress";
import type { ProfileFile } from "../core/importance/profileSchema";
import { parseWebviewMessage, type ExportFormat, type HostToWebview, type PanelSettings, type WebviewToHost } from "../viewModel/protocol";
import { countParameters, keptPositions, selectForProfile } from "../viewModel/layerSelection";
import type { PanelReport } from "./testApi";
import { UserError } from "./errorText";
import type { PruneResult, TrainStep } from "../worker/jobProtocol";
import { checkInsideWorkspace, containingRoot, exportBytes, exportTarget, prunedAdapterDir } from "./paths";
import type { PruneMode } from "../core/adapter/dropRecord";
import type { SweepFile } from "../core/sweep/sweepSchema";
import { PanelSweeps, type PanelSweepPlan, type SweepHooks } from "./panelSweeps";

/** A prune the panel asked for, with every path decided by the host. */
export interface PanelPrunePlan {
  adapterDir: string;
  profilePath: string;
  outDir: string;
  threshold: number;
  mode: PruneMode;
}

/** What the controller needs from its environment (VS Code in the extension, fakes in tests). */
export interface PanelHost {
  /** Sends a message to the webview. */
  post(message: HostToWebview): void;
  /** The workspace folders (absolute paths). */
  roots(): string[];
  /** The folder exports are proposed in (the output folder of the primary profile's workspace). */
  exportFolder(): string | undefined;
  /** Runs a prune (worker, progress, confirmations). */
  prune(plan: PanelPrunePlan): Promise<PruneResult>;
  /** Runs a sweep (worker, progress, cancel); resolves to the sweep file written. */
  evaluate(plan: PanelSweepPlan, hooks: SweepHooks): Promise<string>;
  /** Reads and validates a sweep file. */
  loadSweep(file: string): SweepFile;
  /** Asks where to save; undefined when the user cancels. */
  saveDialog(defaultPath: string, format: ExportFormat): Promise<string | undefined>;
  /** Lets the user pick a profile file to compare with. */
  pickProfile(): Promise<string | undefined>;
  /** Reads and validates a profile file. */
  loadProfile(file: string): ProfileFile;
  /** Shows one error notification for a failed action and logs it. */
  reportError(what: string, e: unknown): void;
  log: Logger;
  /** Called after every change the test API reports. */
  changed(report: PanelReport): void;
  /** Called after an export was written. */
  exported?(file: string): void;
}

/** A profile on screen and the file it came from. */
interface Shown {
  file: string;
  profile: ProfileFile;
}

/** Most training steps kept for replay after a webview reload. */
const MAX_TRAIN_STEPS = 20000;

/** The panel's host-side state and message handling. */
export class PanelController {
  private primary: Shown | undefined;
  private compare: Shown | undefined;
  private ready = false;
  private visible = true;
  private readyCount = 0;
  private threshold: number;
  private mode: PruneMode;
  /** The `loraDrop.threshold`/`loraDrop.mode` settings, sent to the page as its defaults. */
  private settings: PanelSettings;
  /** True once the page reported its own threshold and mode (`stateChanged`): from then on those are the panel's. */
  private pageReported = false;
  private thresholdMoved = false;
  private trainSteps: TrainStep[] = [];
  private trainOutcome: { outcome: "completed" | "cancelled" | "failed"; message?: string } | undefined;
  private messagesReceived = 0;
  private invalidMessages = 0;
  private readonly webviewErrors: string[] = [];
  private readonly sweeps: PanelSweeps;

  constructor(private readonly host: PanelHost, defaults: PanelSettings) {
    this.sweeps = new PanelSweeps({
      send: (m) => this.send(m), roots: () => host.roots(), evaluate: (plan, hooks) => host.evaluate(plan, hooks), loadSweep: (f) => host.loadSweep(f),
      reportError: (what, e) => host.reportError(what, e), log: host.log, changed: () => this.publish(),
    });
    this.settings = { threshold: defaults.threshold, mode: defaults.mode };
    this.threshold = defaults.threshold;
    this.mode = defaults.mode;
  }

  /**
   * The user changed `loraDrop.threshold` or `loraDrop.mode`: the page adopts them unless the user already chose
   * otherwise on it (and then reports its choice with `stateChanged`).
   */
  settingsChanged(settings: PanelSettings): void {
    if (settings.threshold === this.settings.threshold && settings.mode === this.settings.mode) return;
    this.settings = { threshold: settings.threshold, mode: settings.mode };
    if (!this.pageReported) {
      this.threshold = settings.threshold;
      this.mode = settings.mode;
    }
    this.send({ type: "settings", ...this.settings });
    this.publish();
  }

  /** The files on screen, for persisting across reloads. */
  files(): { primary?: string; compare?: string } {
    return { primary: this.primary?.file, compare: this.compare?.file };
  }

  /** Shows a profile in a slot; a new primary profile clears the comparison. */
  showProfile(file: string, profile: ProfileFile, slot: "primary" | "compare"): void {
    if (slot === "primary") {
      this.primary = { file, profile };
      if (this.compare) {
        this.compare = undefined;
        this.send({ type: "clearCompare" });
      }
    } else {
      this.compare = { file, profile };
    }
    this.send({ type: "profile", slot, profile, sourcePath: file });
    if (slot === "primary") this.sweeps.profileShown(file, profile);
    this.publish();
  }

  /** Appends a training step to the loss curve (a step ≤ the previous one starts a new run). */
  trainStep(step: TrainStep): void {
    const last = this.trainSteps[this.trainSteps.length - 1];
    if (last && step.step <= last.step) this.trainSteps = [];
    if (this.trainSteps.length === 0) this.trainOutcome = undefined;
    this.trainSteps.push(step);
    if (this.trainSteps.length > MAX_TRAIN_STEPS) this.trainSteps.splice(0, this.trainSteps.length - MAX_TRAIN_STEPS);
    this.send({ type: "trainProgress", ...step });
    this.publish();
  }

  /** Ends the training curve. */
  trainDone(outcome: "completed" | "cancelled" | "failed", message?: string): void {
    this.trainOutcome = message === undefined ? { outcome } : { outcome, message };
    this.send({ type: "trainDone", ...this.trainOutcome });
    this.publish();
  }

  /** The webview was hidden, shown, or is being reloaded (its page starts empty until it posts `ready`). */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.publish();
  }

  /** The webview's page is gone (hidden without retained context, or reloaded): wait for the next `ready`. */
  webviewReset(): void {
    this.ready = false;
    this.publish();
  }

  /** Handles one raw message from the webview. Invalid messages are logged and ignored. */
  async handleMessage(raw: unknown): Promise<void> {
    this.messagesReceived++;
    const msg = parseWebviewMessage(raw);
    if (!msg) {
      this.invalidMessages++;
      const type = typeof raw === "object" && raw !== null ? String((raw as { type?: unknown }).type).slice(0, 40) : typeof raw;
      this.host.log.warn(`ignored an invalid message from the panel (type ${type})`);
      this.publish();
      return;
    }
    await this.dispatch(msg);
    this.publish();
  }

  /** The threshold the user set on the page, when the page shows a profile of `adapterDir`; else undefined. */
  chosenThreshold(adapterDir: string): number | undefined {
    if (!this.primary || !this.thresholdMoved) return undefined;
    return path.resolve(this.primary.profile.adapter.path) === path.resolve(adapterDir) ? this.threshold : undefined;
  }

  /** The panel as the test API reports it. */
  report(): PanelReport {
    const p = this.primary?.profile;
    // The very selection the page shows and `prune` makes: LoRA layers only, by the engine's own code.
    const selection = p ? selectForProfile(p, this.threshold) : undefined;
    const counts = p && selection ? countParameters(p.adapter.params, p.modules, selection.kept, this.mode) : { before: 0, after: 0 };
    const last = this.trainSteps[this.trainSteps.length - 1];
    return {
      open: true,
      visible: this.visible,
      ready: this.ready,
      readyCount: this.readyCount,
      ...(this.primary ? { primaryPath: this.primary.file } : {}),
      ...(this.compare ? { comparePath: this.compare.file } : {}),
      threshold: this.threshold,
      thresholdMoved: this.thresholdMoved,
      mode: this.mode,
      keptLayers: selection ? keptPositions(selection.kept) : [],
      paramsBefore: counts.before,
      paramsAfter: counts.after,
      trainSteps: this.trainSteps.length,
      ...(last ? { lastLoss: last.loss } : {}),
      ...(this.trainOutcome ? { trainOutcome: this.trainOutcome.outcome } : {}),
      messagesReceived: this.messagesReceived,
      invalidMessages: this.invalidMessages,
      webviewErrors: [...this.webviewErrors],
      ...this.sweeps.report(),
    };
  }

  /**
   * Decides where a panel-initiated prune writes: next to the primary profile's adapter, and only inside the
   * workspace. The profile file names the adapter, and a profile may come from anywhere; the button must not
   * become a way to write outside the workspace.
   */
  planPrune(threshold: number, mode: PruneMode): PanelPrunePlan {
    if (!this.primary) throw new UserError("No profile is open in the panel.");
    const adapterDir = path.resolve(this.primary.profile.adapter.path);
    const outDir = prunedAdapterDir(adapterDir, threshold, mode);
    const roots = this.host.roots();
    if (!containingRoot(outDir, roots)) {
      throw new UserError(`The pruned adapter would be written to ${outDir}, outside the workspace. Open the folder that holds the adapter ${adapterDir}, or use "LoRA-drop: Prune adapter" on it.`);
    }
    return { adapterDir, profilePath: this.primary.file, outDir, threshold, mode };
  }

  private async dispatch(msg: WebviewToHost): Promise<void> {
    switch (msg.type) {
      case "ready":
        this.ready = true;
        this.readyCount++;
        this.replay();
        return;
      case "stateChanged":
        if (msg.threshold !== this.threshold) this.thresholdMoved = true;
        this.threshold = msg.threshold;
        this.mode = msg.mode;
        this.pageReported = true;
        return;
      case "webviewError":
        this.webviewErrors.push(msg.message);
        this.webviewErrors.splice(0, Math.max(0, this.webviewErrors.length - 50));
        this.host.log.warn(`panel: ${msg.message}`);
        return;
      case "applyPrune":
        return this.applyPrune(msg.requestId, msg.threshold, msg.mode);
      case "export":
        return this.exportFile(msg.requestId, msg.format, msg.fileName, msg.content);
      case "pickCompareProfile":
        return this.pickCompare();
      case "evaluateThresholds":
        return this.sweeps.evaluate(msg.mode, this.primary);
      case "cancelEvaluation":
        return this.sweeps.cancel();
    }
  }

  private async applyPrune(requestId: number, threshold: number, mode: PruneMode): Promise<void> {
    try {
      const r = await this.host.prune(this.planPrune(threshold, mode));
      this.send({ type: "pruneResult", requestId, threshold: r.threshold, mode: r.mode, keptLayers: r.keptLayers, paramsBefore: r.paramsBefore, paramsAfter: r.paramsAfter, outputPath: r.outDir });
    } catch (e) {
      this.send({ type: "error", requestId, message: errorLine(e) });
      this.host.reportError("Prune adapter", e);
    }
  }

  private async exportFile(requestId: number, format: ExportFormat, fileName: string, content: string): Promise<void> {
    try {
      const roots = this.host.roots();
      const folder = this.host.exportFolder() ?? roots[0];
      if (!folder) throw new UserError("Open a folder first: exports are saved inside the workspace.");
      const proposed = exportTarget(folder, fileName, format);
      if (!proposed) throw new UserError(`Refused the export name ${JSON.stringify(fileName)}.`);
      const bytes = exportBytes(format, content);
      const chosen = await this.host.saveDialog(proposed, format);
      if (!chosen) {
        this.send({ type: "exportDone", requestId });
        return;
      }
      const outside = checkInsideWorkspace(chosen, roots);
      if (outside) throw new UserError(outside);
      writeFileAtomic(chosen, bytes);
      this.host.log.info(`exported ${format.toUpperCase()} to ${chosen}`);
      this.host.exported?.(chosen);
      this.send({ type: "exportDone", requestId, savedPath: chosen });
    } catch (e) {
      this.send({ type: "error", requestId, message: errorLine(e) });
      this.host.reportError("Export", e);
    }
  }

  private async pickCompare(): Promise<void> {
    try {
      const file = await this.host.pickProfile();
      if (!file) return;
      this.showProfile(file, this.host.loadProfile(file), "compare");
    } catch (e) {
      this.send({ type: "error", message: errorLine(e) });
      this.host.reportError("Open profile", e);
    }
  }

  /** After `ready`, the page is empty: send everything it should show. */
  private replay(): void {
    // Settings first, so a fresh page starts the profile at the user's threshold rather than at 0.9.
    this.send({ type: "settings", ...this.settings });
    if (this.primary) this.send({ type: "profile", slot: "primary", profile: this.primary.profile, sourcePath: this.primary.file });
    this.sweeps.replay();
    if (this.compare) this.send({ type: "profile", slot: "compare", profile: this.compare.profile, sourcePath: this.compare.file });
    for (const s of this.trainSteps) this.send({ type: "trainProgress", ...s });
    if (this.trainOutcome) this.send({ type: "trainDone", ...this.trainOutcome });
  }

  private send(message: HostToWebview): void {
    if (this.ready) this.host.post(message);
  }

  private publish(): void {
    this.host.changed(this.report());
  }
}

function errorLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 8000);
}
