/**
 * The extension's entry point: wiring only. Commands, the panel, settings and the worker live in extension/host/;
 * the engine (extension/core/) is loaded only inside the worker process, so activation stays cheap.
 */
import * as vscode from "vscode";
import { TestState, type LoraDropTestApi } from "./host/testApi";
import { watchAdapterFolders } from "./host/adapterFolders";
import { registerCommands, wireCommands } from "./host/commands/table";
import { resumeWalkthrough } from "./host/commands/createDemo";
import { createHostLog } from "./host/log";
import { PANEL_VIEW_TYPE } from "./host/manifest";
import { ProfilePanel } from "./host/panel";
import { Services } from "./host/services";

/** Activates the extension; returns the test API (see testApi.ts; not a public API). */
export function activate(context: vscode.ExtensionContext): LoraDropTestApi {
  const log = createHostLog();
  const test = new TestState();
  const services = new Services(context, log, test);
  const deps = wireCommands(services);
  context.subscriptions.push(
    log.channel,
    ...registerCommands(services, deps),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => {
        deps.panels.revive(panel);
      },
    }),
    // A workspace with an adapter in it has what the walkthrough's first step would create.
    watchAdapterFolders(log, () => void services.milestone("workspaceReady")),
    // A settings change is read at the next command; invalid values are reported when read.
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("loraDrop")) services.settings();
    }),
  );
  services.settings();
  void resumeWalkthrough(services).catch((e) => log.warn(`walkthrough: ${(e as Error).message}`));
  log.info(`LoRA-drop ${context.extension.packageJSON.version as string} activated (${context.extension.extensionKind === vscode.ExtensionKind.Workspace ? "workspace" : "UI"} host, ${process.platform}-${process.arch})`);
  return test.api();
}

/** Closes the panel; running workers notice the host going away and stop. */
export function deactivate(): void {
  ProfilePanel.current?.dispose();
}
