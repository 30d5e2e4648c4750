/**
 * Keeps the context key `loraDrop.adapterFolders` (the workspace's folders holding an adapter_config.json) up to
 * date, so the Explorer shows "Prune adapter" on adapter folders whatever their name. A `when` clause cannot
 * look inside a folder; `resourcePath in loraDrop.adapterFolders` can test against this list.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { ADAPTER_FOLDERS_CONTEXT_KEY } from "./manifest";
import { CANDIDATE_EXCLUDE } from "./candidates";

/** Most adapters listed (the context key is sent to the renderer; keep it small). */
const MAX_FOLDERS = 2000;

/** Starts watching; dispose to stop. `found` hears of every scan that found at least one adapter. */
export function watchAdapterFolders(log: { warn(m: string): void }, found?: (folders: string[]) => void): vscode.Disposable {
  let timer: NodeJS.Timeout | undefined;
  const refresh = async () => {
    try {
      const uris = await vscode.workspace.findFiles("**/adapter_config.json", CANDIDATE_EXCLUDE, MAX_FOLDERS);
      const folders = [...new Set(uris.map((u) => path.dirname(u.fsPath)))];
      await vscode.commands.executeCommand("setContext", ADAPTER_FOLDERS_CONTEXT_KEY, folders);
      if (folders.length) found?.(folders);
    } catch (e) {
      log.warn(`could not list adapter folders: ${(e as Error).message}`);
    }
  };
  // File events come in bursts (a prune writes a whole folder); one scan after the burst is enough.
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void refresh(), 300);
  };
  const watcher = vscode.workspace.createFileSystemWatcher("**/adapter_config.json");
  const subs = [watcher, watcher.onDidCreate(schedule), watcher.onDidDelete(schedule), vscode.workspace.onDidChangeWorkspaceFolders(schedule)];
  void refresh();
  return new vscode.Disposable(() => {
    if (timer) clearTimeout(timer);
    subs.forEach((d) => d.dispose());
  });
}
