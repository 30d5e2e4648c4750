/**
 * "LoRA-drop: Create demo workspace": asks for a folder, writes a tiny model, a trained adapter and a dataset
 * there in the worker (offline, in seconds; a new `lora-drop-demo` folder when the chosen one holds something),
 * and opens it. The window reloads on opening, so the walkthrough is reopened at its next step by `resumeWalkthrough`
 * when the extension activates in the new workspace.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { CancelledError } from "../../core/util/errors";
import { DEMO_FILES, isDemoWorkspace } from "../../core/demo/demoFiles";
import { demoArgs, parseInvocation } from "../commandArgs";
import { demoFolderFor, isInside } from "../paths";
import type { Services } from "../services";
import { walkthroughFullId } from "../walkthrough";

/** globalState key: the demo folder whose window should reopen the walkthrough once (the open reloads the window). */
const PENDING_WALKTHROUGH_KEY = "loraDrop.demoWalkthroughPending";

/** Runs the command; resolves to the demo workspace's folder. */
export async function createDemoCommand(s: Services, rawArgs: readonly unknown[]): Promise<string> {
  const args = demoArgs(parseInvocation(rawArgs).options);
  const picked = args.folder ?? (await askFolder(s));
  const dir = demoFolderFor(picked, (d) => (fs.existsSync(d) ? fs.readdirSync(d) : undefined));
  const result = await s.runJob("LoRA-drop: creating the demo workspace", { kind: "demo", dir });
  s.test.update((t) => (t.lastDemoDir = result.dir));
  s.log.info(`demo workspace: ${result.dir} in ${result.seconds.toFixed(1)} s; adapter trained, loss ${result.firstLoss.toFixed(3)} → ${result.finalLoss.toFixed(3)}`);
  await s.milestone("workspaceReady");
  if (args.open === false) return result.dir;
  const open = async (forceNewWindow: boolean) => {
    await s.context.globalState.update(PENDING_WALKTHROUGH_KEY, result.dir);
    await vscode.commands.executeCommand("vscode.openFolder", vscode.Uri.file(result.dir), { forceNewWindow });
  };
  if (s.roots().some((r) => isInside(result.dir, r))) {
    // Already inside the open workspace: nothing to reload, carry on with the walkthrough here.
    void vscode.commands.executeCommand("revealInExplorer", vscode.Uri.file(result.dir)).then(undefined, () => undefined);
    s.info(`Demo workspace written to ${s.displayPath(result.dir)}: ${DEMO_FILES.model}/, ${DEMO_FILES.adapter}/ and ${DEMO_FILES.data}. Next: profile the adapter.`);
  } else if (s.roots().length === 0) {
    await open(false);
  } else {
    s.info(`Demo workspace written to ${result.dir}. Open it to go on with the walkthrough.`, { title: "Open", run: () => open(false) }, { title: "Open in New Window", run: () => open(true) });
  }
  return result.dir;
}

/**
 * On activation: a demo workspace completes the walkthrough's first step (and so does any workspace with an
 * adapter, see extension.ts), and the window that the command opened shows the walkthrough at the next step.
 */
export async function resumeWalkthrough(s: Services): Promise<void> {
  const roots = s.roots();
  if (!roots.some(isDemoWorkspace)) return;
  await s.milestone("workspaceReady");
  const pending = s.context.globalState.get<string>(PENDING_WALKTHROUGH_KEY);
  if (!pending || !roots.some((r) => path.resolve(r) === path.resolve(pending))) return;
  await s.context.globalState.update(PENDING_WALKTHROUGH_KEY, undefined);
  await openWalkthrough(s, "profile");
}

/** Opens the walkthrough at `step` (a step id of walkthrough.ts). */
export async function openWalkthrough(s: Services, step = "createDemo"): Promise<void> {
  const category = walkthroughFullId(s.context.extension.packageJSON as { publisher: string; name: string });
  await vscode.commands.executeCommand("workbench.action.openWalkthrough", { category, step }, false);
}

async function askFolder(s: Services): Promise<string> {
  const root = s.roots()[0];
  const uris = await vscode.window.showOpenDialog({
    title: "Folder for the LoRA-drop demo workspace",
    openLabel: "Create demo here",
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    defaultUri: vscode.Uri.file(root ?? os.homedir()),
  });
  const uri = uris?.[0];
  if (!uri) throw new CancelledError("demo workspace");
  return uri.fsPath;
}
