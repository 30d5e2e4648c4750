/**
 * What the extension exposes for tests only: `activate` returns a LoraDropTestApi, and when the environment
 * variable LORA_DROP_TEST_STATE names a file, the same snapshot is written there (atomically) after every change,
 * for tests that drive VS Code from outside (code-server + Playwright cannot call the API). Not a public API:
 * it may change with any version. Pure (no `vscode`).
 */
import { writeFileAtomic } from "../core/io/atomicWrite";
import type { PruneResult } from "../worker/jobProtocol";
import type { PruneMode } from "../core/adapter/dropRecord";

/** The environment variable naming the snapshot file. */
export const TEST_STATE_ENV = "LORA_DROP_TEST_STATE";

/** The heatmap panel as the host knows it: what it sent and what the webview reported back. */
export interface PanelReport {
  /** True while a panel exists (visible or in a background tab). */
  open: boolean;
  visible: boolean;
  /** True once the webview has posted `ready` since its last (re)load. */
  ready: boolean;
  /** Times the webview posted `ready` (a reload or revive posts it again). */
  readyCount: number;
  primaryPath?: string;
  comparePath?: string;
  /** The panel's threshold and mode, as last reported by the webview (`stateChanged`) or the defaults. */
  threshold: number;
  /** True once the user moved the threshold on the page (a `stateChanged` with another threshold). */
  thresholdMoved: boolean;
  mode: PruneMode;
  /** Kept layer positions at that threshold, computed with the panel's own selection code. */
  keptLayers: number[];
  paramsBefore: number;
  paramsAfter: number;
  /** Training steps sent to the panel in the current run, and the last loss. */
  trainSteps: number;
  lastLoss?: number;
  trainOutcome?: "completed" | "cancelled" | "failed";
  /** Messages the webview posted, in total, and the ones that failed validation. */
  messagesReceived: number;
  invalidMessages: number;
  /** `webviewError` messages, newest last. */
  webviewErrors: string[];
  /** Modes of the primary profile's sweeps on screen, and whether "Evaluate thresholds" runs. */
  sweeps: PruneMode[];
  evaluating: boolean;
}

/** The last prune, by command or by the panel's button. */
export interface PruneReport extends PruneResult {
  source: "command" | "panel";
  adapterDir: string;
  profilePath: string;
}

/** The last training run. */
export interface TrainReport {
  outDir: string;
  steps: number;
  finalLoss: number;
}

/** Everything, as one JSON-serialisable object. */
export interface TestSnapshot {
  /** Increases with every change; a test waits for it to move past a value it saw. */
  revision: number;
  /** Commands running now (ids). */
  running: string[];
  /** Commands finished so far, with their outcome, newest last. */
  finished: { command: string; outcome: "ok" | "failed" | "cancelled" }[];
  lastProfilePath?: string;
  lastPrune?: PruneReport;
  lastTrain?: TrainReport;
  lastPipelineOutDir?: string;
  lastExportPath?: string;
  /** The last sweep file written by "Evaluate thresholds". */
  lastSweepPath?: string;
  panel?: PanelReport;
  /** Error notifications shown, newest last (at most 50). */
  errors: string[];
  /** Information notifications shown, newest last (at most 50). */
  infos: string[];
  /** Walkthrough milestones reached in this window, in order (walkthrough.ts). */
  milestones: string[];
  /** The last demo workspace written. */
  lastDemoDir?: string;
}

/** The test API `activate` returns. */
export interface LoraDropTestApi {
  lastProfilePath(): string | undefined;
  lastPrune(): PruneReport | undefined;
  lastTrain(): TrainReport | undefined;
  panel(): PanelReport | undefined;
  errors(): string[];
  snapshot(): TestSnapshot;
  /** Resolves once no command is running. */
  whenIdle(): Promise<void>;
}

/** Keeps the snapshot, notifies waiters, and mirrors it to the file named by LORA_DROP_TEST_STATE. */
export class TestState {
  private state: TestSnapshot = { revision: 0, running: [], finished: [], errors: [], infos: [], milestones: [] };
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly file: string | undefined = process.env[TEST_STATE_ENV] || undefined) {
    this.flush();
  }

  /** Applies a change and publishes it. */
  update(change: (s: TestSnapshot) => void): void {
    change(this.state);
    this.state.revision++;
    this.state.errors = this.state.errors.slice(-50);
    this.state.infos = this.state.infos.slice(-50);
    this.state.finished = this.state.finished.slice(-100);
    this.flush();
    if (this.state.running.length === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  /** Marks a command as started. */
  commandStarted(id: string): void {
    this.update((s) => s.running.push(id));
  }

  /** Marks a command as finished. */
  commandFinished(id: string, outcome: "ok" | "failed" | "cancelled"): void {
    this.update((s) => {
      const i = s.running.indexOf(id);
      if (i >= 0) s.running.splice(i, 1);
      s.finished.push({ command: id, outcome });
    });
  }

  /** A deep copy of the snapshot. */
  snapshot(): TestSnapshot {
    return JSON.parse(JSON.stringify(this.state)) as TestSnapshot;
  }

  /** The API object handed to tests. */
  api(): LoraDropTestApi {
    return {
      lastProfilePath: () => this.state.lastProfilePath,
      lastPrune: () => this.snapshot().lastPrune,
      lastTrain: () => this.snapshot().lastTrain,
      panel: () => this.snapshot().panel,
      errors: () => [...this.state.errors],
      snapshot: () => this.snapshot(),
      whenIdle: () => (this.state.running.length === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve))),
    };
  }

  private flush(): void {
    if (!this.file) return;
    try {
      writeFileAtomic(this.file, JSON.stringify(this.state, null, 2));
    } catch {
      // A test harness problem (unwritable path) must not break the extension.
    }
  }
}
