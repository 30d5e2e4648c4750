/**
 * The heatmap panel: one webview panel (created or revealed, and revived after a reload by a
 * WebviewPanelSerializer), with a strict CSP page from renderPanelHtml and resources only from the extension's
 * dist/ and media/ folders. Message handling lives in PanelController; this class connects it to VS Code.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import { readProfile } from "../core/importance/profileFile";
import type { ProfileFile } from "../core/importance/profileSchema";
import { makeNonce, renderPanelHtml } from "./panelHtml";
import type { ExportFormat } from "../viewModel/protocol";
import { PANEL_VIEW_TYPE } from "./manifest";
import { PanelController, type PanelHost, type PanelPrunePlan } from "./panelController";
import type { PruneResult } from "../worker/jobProtocol";
import type { Services } from "./services";
import type { PanelSweepPlan, SweepHooks } from "./panelSweeps";
import { readSweep } from "../core/sweep/sweepFile";

/** workspaceState key: the profile files the panel shows, so a revived panel can load them again. */
const PANEL_FILES_KEY = "loraDrop.panelFiles";

/** Runs a prune asked for by the panel (implemented by the prune command, which owns confirmations). */
export type PanelPruneRunner = (plan: PanelPrunePlan) => Promise<PruneResult>;

/** What the panel's buttons run: the prune flow and the sweep ("Evaluate thresholds"). */
export interface PanelRunners {
  prune: PanelPruneRunner;
  evaluate(plan: PanelSweepPlan, hooks: SweepHooks): Promise<string>;
}

/** The LoRA-drop panel. At most one exists; commands reveal it. */
export class ProfilePanel {
  /** The panel, while one is open. */
  static current: ProfilePanel | undefined;

  readonly controller: PanelController;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];

  /** Reveals the panel, creating it if needed. */
  static createOrShow(services: Services, runners: PanelRunners): ProfilePanel {
    if (ProfilePanel.current) {
      ProfilePanel.current.panel.reveal(undefined, true);
      return ProfilePanel.current;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, "LoRA-drop", { viewColumn: vscode.ViewColumn.Active, preserveFocus: false }, webviewOptions(services.context.extensionUri));
    return (ProfilePanel.current = new ProfilePanel(panel, services, runners));
  }

  /** Restores a panel VS Code kept across a reload, and the profiles it showed. */
  static revive(panel: vscode.WebviewPanel, services: Services, runners: PanelRunners): ProfilePanel {
    ProfilePanel.current?.dispose();
    const revived = (ProfilePanel.current = new ProfilePanel(panel, services, runners));
    const files = services.context.workspaceState.get<{ primary?: string; compare?: string }>(PANEL_FILES_KEY, {});
    for (const slot of ["primary", "compare"] as const) {
      const file = files[slot];
      if (!file) continue;
      try {
        revived.show(file, readProfile(file), slot);
      } catch (e) {
        // A profile deleted or changed since: the panel stays, with what could be restored.
        services.log.warn(`could not restore the panel's ${slot} profile: ${(e as Error).message}`);
      }
    }
    return revived;
  }

  private constructor(private readonly panel: vscode.WebviewPanel, private readonly services: Services, runners: PanelRunners) {
    panel.webview.options = webviewOptions(services.context.extensionUri);
    panel.iconPath = vscode.Uri.joinPath(services.context.extensionUri, "media", "icon.png");
    this.controller = new PanelController(this.host(runners), services.settings());
    panel.webview.html = this.html();
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m) => void this.controller.handleMessage(m)),
      panel.onDidChangeViewState(() => {
        // Without retainContextWhenHidden the page is discarded when hidden and reloaded when shown again.
        if (!panel.visible) this.controller.webviewReset();
        this.controller.setVisible(panel.visible);
      }),
      panel.onDidDispose(() => this.dispose()),
      // The page starts from these settings; a change reaches an open panel at once.
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration("loraDrop.threshold") || e.affectsConfiguration("loraDrop.mode")) this.controller.settingsChanged(services.settings());
      }),
    );
  }

  /** Shows a profile in the panel and remembers it for the next reload. */
  show(file: string, profile: ProfileFile, slot: "primary" | "compare"): void {
    this.controller.showProfile(file, profile, slot);
    this.panel.title = `LoRA-drop: ${profileTitle(file)}`;
    void this.services.context.workspaceState.update(PANEL_FILES_KEY, this.controller.files());
  }

  /** Closes the panel. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (ProfilePanel.current === this) ProfilePanel.current = undefined;
    this.services.test.update((s) => {
      if (s.panel) s.panel = { ...s.panel, open: false, visible: false, ready: false };
    });
    while (this.disposables.length) this.disposables.pop()?.dispose();
    this.panel.dispose();
  }

  private html(): string {
    const webview = this.panel.webview;
    const root = this.services.context.extensionUri;
    const asUri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(root, ...p)).toString();
    const codicons = vscode.Uri.joinPath(root, "dist", "webview", "codicon.css").fsPath;
    return renderPanelHtml({
      scriptUri: asUri("dist", "webview", "main.js"),
      styleUri: asUri("dist", "webview", "panel.css"),
      ...(fs.existsSync(codicons) ? { codiconsUri: asUri("dist", "webview", "codicon.css") } : {}),
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      title: "LoRA-drop",
    });
  }

  private host(runners: PanelRunners): PanelHost {
    const services = this.services;
    return {
      // A run (training) may outlive the panel; messages to a closed panel are dropped.
      post: (message) => {
        if (!this.disposed) void this.panel.webview.postMessage(message);
      },
      roots: () => services.roots(),
      exportFolder: () => {
        const dir = services.outputFolderFor(this.controller.files().primary);
        fs.mkdirSync(dir, { recursive: true });
        return dir;
      },
      prune: runners.prune,
      evaluate: (plan, hooks) => runners.evaluate(plan, hooks),
      loadSweep: (file) => readSweep(file),
      saveDialog: async (defaultPath: string, format: ExportFormat) => {
        const uri = await vscode.window.showSaveDialog({
          title: `Export ${format.toUpperCase()}`,
          saveLabel: "Export",
          defaultUri: vscode.Uri.file(defaultPath),
          filters: { [format.toUpperCase()]: [format] },
        });
        return uri?.fsPath;
      },
      pickProfile: async () => {
        const uris = await vscode.window.showOpenDialog({
          title: "Profile to compare with",
          openLabel: "Compare",
          canSelectMany: false,
          defaultUri: vscode.Uri.file(services.outputFolderFor(this.controller.files().primary)),
          filters: { "LoRA-drop profile": ["json"] },
        });
        return uris?.[0]?.fsPath;
      },
      loadProfile: (file) => readProfile(file),
      reportError: (what, e) => services.reportError(what, e),
      log: services.log,
      changed: (report) => {
        services.test.update((s) => (s.panel = report));
        // The walkthrough's "read the heatmap" and "choose T" steps complete on what the panel reports.
        if (report.ready && report.primaryPath) void services.milestone("heatmapShown");
        if (report.thresholdMoved) void services.milestone("thresholdChosen");
      },
      exported: (file) => services.test.update((s) => (s.lastExportPath = file)),
    };
  }
}

/** Scripts on, and local resources limited to the bundle and media folders. */
function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, "dist"), vscode.Uri.joinPath(extensionUri, "media")],
  };
}

/** The tab title's part for a profile file: its name without `.profile.json`. */
function profileTitle(file: string): string {
  return (file.split(/[/\\]/).pop() ?? file).replace(/\.profile\.json$|\.json$/, "");
}
