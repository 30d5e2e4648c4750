/**
 * What every command needs, in one place: settings, workspace folders, the output folder, the log, running a
 * job in the worker under a cancellable progress notification, and the one way errors reach the user.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import type { TestState } from "./testApi";
import { describeError } from "./errorText";
import { runJob } from "./jobRunner";
import type { Job, JobResults, TrainStep } from "../worker/jobProtocol";
import type { ProgressUpdate } from "../core/util/progress";
import type { HostLog } from "./log";
import { containingRoot, outputFolderPath } from "./paths";
import { ProgressTracker } from "./progressText";
import { engineOf, readSettings, type Settings } from "./settings";
import { milestoneContextKey, type Milestone } from "./walkthrough";
import { choosePython, describePick, PYTHON_EXTENSION_ID } from "./pythonChoice";

/** workspaceState key: adapter folder → the latest profile written for it. */
const LATEST_PROFILES_KEY = "loraDrop.latestProfiles";

/** Shared services of the extension host. */
export class Services {
  private readonly reportedSettingProblems = new Set<string>();

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly log: HostLog,
    readonly test: TestState,
  ) {}

  /** The settings for a resource (or the window), with invalid values replaced by defaults and logged once. */
  settings(scope?: string): Settings {
    const cfg = vscode.workspace.getConfiguration("loraDrop", scope ? vscode.Uri.file(scope) : undefined);
    const { settings, problems } = readSettings((key) => cfg.get(key));
    for (const p of problems) {
      if (this.reportedSettingProblems.has(p)) continue;
      this.reportedSettingProblems.add(p);
      this.log.warn(`settings: ${p}`);
    }
    return settings;
  }

  /**
   * The engine fields of a job about `scope`: the engine of the settings and, for torch, its dtype and the
   * interpreter (the pythonPath setting, else the Python extension's selection, else the engine's default).
   */
  async engineFields(scope?: string): Promise<ReturnType<typeof engineOf>> {
    const settings = this.settings(scope);
    if (settings.engine !== "torch") return engineOf(settings, undefined);
    const pick = await choosePython(settings.pythonPath, vscode.extensions.getExtension(PYTHON_EXTENSION_ID), scope ? vscode.Uri.file(scope) : undefined);
    this.log.info(`torch engine: Python ${describePick(pick)}`);
    return engineOf(settings, pick.python);
  }

  /** Absolute paths of the workspace folders (local file system ones). */
  roots(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file").map((f) => f.uri.fsPath);
  }

  /**
   * The output folder for work about `file`: the setting under the workspace folder holding `file` (or the first
   * one). Without a workspace, the extension's global storage, so a profile is still saved somewhere stable.
   */
  outputFolderFor(file?: string): string {
    const roots = this.roots();
    const root = (file && containingRoot(file, roots)) ?? roots[0];
    if (root) return outputFolderPath(root, this.settings(root).outputFolder);
    return path.join(this.context.globalStorageUri.fsPath, "profiles");
  }

  /** Every output folder (one per workspace folder), for finding saved profiles. */
  allOutputFolders(): string[] {
    const roots = this.roots();
    return roots.length ? roots.map((r) => outputFolderPath(r, this.settings(r).outputFolder)) : [this.outputFolderFor()];
  }

  /** The latest profile recorded for an adapter folder (it may have been deleted since). */
  recordedProfile(adapterDir: string): string | undefined {
    return this.context.workspaceState.get<Record<string, string>>(LATEST_PROFILES_KEY, {})[path.resolve(adapterDir)];
  }

  /** Records the latest profile of an adapter folder. */
  async recordProfile(adapterDir: string, profilePath: string): Promise<void> {
    const all = { ...this.context.workspaceState.get<Record<string, string>>(LATEST_PROFILES_KEY, {}) };
    all[path.resolve(adapterDir)] = profilePath;
    await this.context.workspaceState.update(LATEST_PROFILES_KEY, all);
  }

  /**
   * Runs a job in the worker process under a cancellable progress notification: the notification's Cancel
   * (a CancellationToken) aborts an AbortController whose signal stops the worker.
   */
  runJob<J extends Job>(title: string, job: J, extra: { trainStep?: (s: TrainStep) => void; signal?: AbortSignal; progress?: (u: ProgressUpdate) => void } = {}): Promise<JobResults[J["kind"]]> {
    this.log.info(`${title}: starting ${job.kind} job ${JSON.stringify(job)}`);
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => {
          this.log.info(`${title}: cancel requested`);
          controller.abort();
        });
        if (token.isCancellationRequested) controller.abort();
        // A caller's own cancel (the panel's button) stops the job as the notification's does.
        const onAbort = () => controller.abort();
        extra.signal?.addEventListener("abort", onAbort, { once: true });
        if (extra.signal?.aborted) controller.abort();
        const tracker = new ProgressTracker();
        try {
          return await runJob(job, {
            signal: controller.signal,
            progress: (u) => {
              progress.report(tracker.next(u));
              extra.progress?.(u);
            },
            log: this.log,
            trainStep: extra.trainStep,
            env: this.workerEnv(),
          });
        } finally {
          subscription.dispose();
          extra.signal?.removeEventListener("abort", onAbort);
        }
      }),
    );
  }

  /**
   * Records that the user reached a walkthrough milestone: sets its context key, which completes the walkthrough
   * step waiting for it. Context keys last for the window's life; VS Code remembers the completed step itself.
   */
  async milestone(m: Milestone): Promise<void> {
    if (this.test.snapshot().milestones.includes(m)) return;
    this.test.update((t) => t.milestones.push(m));
    await vscode.commands.executeCommand("setContext", milestoneContextKey(m), true);
  }

  /** Shows one error notification with a "Show log" action, and logs the details. Cancellations are only logged. */
  reportError(what: string, e: unknown): void {
    const d = describeError(what, e, (file) => this.displayPath(file));
    if (d.cancelled) {
      this.log.info(d.message);
      void vscode.window.setStatusBarMessage(`$(circle-slash) ${d.message}`, 5000);
      return;
    }
    this.log.error(d.detail);
    this.test.update((s) => s.errors.push(d.message));
    // A missing interpreter or library is fixed by installing it or naming another interpreter: offer the setting.
    const setPython = d.missingDependency ? ["Set Python path"] : [];
    void vscode.window.showErrorMessage(d.message, ...setPython, "Show log").then((choice) => {
      if (choice === "Show log") this.log.show();
      if (choice === "Set Python path") void vscode.commands.executeCommand("workbench.action.openSettings", "loraDrop.pythonPath");
    });
  }

  /** A path as the user sees it in the Explorer: workspace-relative inside the workspace, absolute elsewhere. */
  displayPath(file: string): string {
    const roots = this.roots();
    const root = containingRoot(file, roots);
    if (!root) return file;
    const rel = path.relative(root, file) || ".";
    return roots.length > 1 ? `${path.basename(root)}/${rel}` : rel;
  }

  /** Shows an information notification (not awaited: it stays until dismissed) and records it for tests. */
  info(message: string, ...actions: { title: string; run: () => unknown }[]): void {
    this.log.info(message);
    this.test.update((s) => s.infos.push(message));
    void vscode.window.showInformationMessage(message, ...actions.map((a) => a.title)).then((choice) => {
      actions.find((a) => a.title === choice)?.run();
    });
  }

  /**
   * The worker's extra environment. onnxruntime's telemetry follows VS Code's telemetry setting; the variable is
   * always set explicitly because the engine turns telemetry off when it is unset.
   */
  private workerEnv(): Record<string, string> {
    return { ORT_DISABLE_TELEMETRY: vscode.env.isTelemetryEnabled ? "0" : "1" };
  }
}
