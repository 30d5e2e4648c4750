/**
 * "LoRA-drop: Open profile": shows a saved profile in the heatmap panel. From the Explorer, the clicked JSON (and,
 * with two selected, the second one as the comparison); from the palette, a pick of the saved profiles (newest
 * first) or a file dialog where two files may be chosen.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { CancelledError } from "../../core/util/errors";
import { readProfile } from "../../core/importance/profileFile";
import { openProfileArgs, parseInvocation } from "../commandArgs";
import { UserError } from "../errorText";
import { listJsonFiles, readProfileHead, type ProfileHead } from "../profileIndex";
import type { Services } from "../services";
import type { CommandDeps } from "./deps";

/** Runs the command; resolves to the files shown. */
export async function openProfileCommand(s: Services, deps: CommandDeps, rawArgs: readonly unknown[]): Promise<{ primary: string; compare?: string }> {
  const inv = parseInvocation(rawArgs);
  const args = openProfileArgs(inv.options);
  let files = args.profile ? [args.profile, ...(args.compare ? [args.compare] : [])] : inv.resources;
  if (files.length === 0) files = await pickProfiles(s);
  if (files.length > 2) throw new UserError(`Select one profile, or two to compare (${files.length} were selected).`);
  // Both are read (and validated) before the panel changes, so a bad second file leaves the panel as it was.
  const profiles = files.map((f) => readProfile(f));
  deps.panels.open(files[0]!, profiles[0]!, "primary");
  if (files[1]) deps.panels.open(files[1], profiles[1]!, "compare");
  s.test.update((t) => (t.lastProfilePath = files[0]));
  return { primary: files[0]!, ...(files[1] ? { compare: files[1] } : {}) };
}

/** The saved profiles (newest first) and "Browse…". */
async function pickProfiles(s: Services): Promise<string[]> {
  const heads = s.allOutputFolders().flatMap(listJsonFiles).map(readProfileHead).filter((h): h is ProfileHead => h !== undefined).sort((a, b) => b.mtimeMs - a.mtimeMs);
  type Item = vscode.QuickPickItem & { file?: string };
  const items: Item[] = heads.map((h) => ({
    label: path.basename(h.file),
    description: `adapter ${path.basename(h.adapterPath)}`,
    detail: new Date(h.mtimeMs).toLocaleString(),
    file: h.file,
  }));
  if (items.length) items.push({ label: "", kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: "$(folder-opened) Browse…", description: "Select one profile, or two to compare" });
  const chosen = await vscode.window.showQuickPick(items, { title: "LoRA-drop: Open profile", placeHolder: "Saved profiles, newest first", matchOnDescription: true });
  if (!chosen) throw new CancelledError("open profile");
  if (chosen.file) return [chosen.file];
  const uris = await vscode.window.showOpenDialog({
    title: "Open LoRA-drop profile",
    openLabel: "Open",
    canSelectMany: true,
    defaultUri: vscode.Uri.file(s.outputFolderFor()),
    filters: { "LoRA-drop profile": ["json"] },
  });
  if (!uris?.length) throw new CancelledError("open profile");
  return uris.map((u) => u.fsPath);
}
