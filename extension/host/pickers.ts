/**
 * Quick picks for the base model folder, the adapter folder and the dataset: what the workspace holds first
 * (the last choice on top), then "Browse…" for a folder or file dialog. Choices are remembered per workspace.
 * Closing a pick cancels the command (CancelledError: no error notification).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { CancelledError } from "../core/util/errors";
import { CANDIDATE_EXCLUDE, CANDIDATE_GLOB, classifyCandidates, rememberedFirst, type Candidates } from "./candidates";
import type { Services } from "./services";

/** What can be picked. */
export type PickKind = "model" | "adapter" | "dataset";

const TEXT: Record<PickKind, { title: string; placeholder: string; browse: string; folders: boolean }> = {
  model: { title: "Base model folder", placeholder: "Folder with config.json and *.safetensors (Hugging Face layout)", browse: "Select base model folder", folders: true },
  adapter: { title: "LoRA adapter folder", placeholder: "Folder with adapter_config.json and adapter_model.safetensors (PEFT)", browse: "Select adapter folder", folders: true },
  dataset: { title: "Dataset", placeholder: "JSONL (text | prompt + completion | input_ids) or .txt with one example per line", browse: "Select dataset", folders: false },
};

/** Finds the workspace's candidates once per command run (findFiles is not free on big workspaces). */
export class Pickers {
  private candidates: Promise<Candidates> | undefined;

  constructor(private readonly services: Services) {}

  /** Asks for a path of `kind`; `step` is shown as "1/3" in the title. */
  async pick(kind: PickKind, step?: string): Promise<string> {
    const text = TEXT[kind];
    const found = await this.find();
    const list = kind === "model" ? found.models : kind === "adapter" ? found.adapters : found.datasets;
    const remembered = this.remembered(kind);
    // A remembered path outside the workspace (browsed earlier) is offered while it still exists.
    const ordered = rememberedFirst(list, remembered, remembered !== undefined && fs.existsSync(remembered));
    const roots = this.services.roots();
    type Item = vscode.QuickPickItem & { path?: string };
    const items: Item[] = ordered.map((p) => ({
      label: path.basename(p),
      description: describe(p, roots),
      path: p,
      ...(remembered && path.resolve(p) === path.resolve(remembered) ? { detail: "last used" } : {}),
    }));
    if (items.length) items.push({ label: "", kind: vscode.QuickPickItemKind.Separator });
    items.push({ label: "$(folder-opened) Browse…", description: text.browse });
    const chosen = await vscode.window.showQuickPick(items, {
      title: `LoRA-drop: ${text.title}${step ? ` (${step})` : ""}`,
      placeHolder: text.placeholder,
      matchOnDescription: true,
      ignoreFocusOut: true,
    });
    if (!chosen) throw new CancelledError(`${text.title} selection`);
    const result = chosen.path ?? (await this.browse(kind));
    await this.remember(kind, result);
    return result;
  }

  /** Remembers a choice made elsewhere (an Explorer selection, a command argument). */
  async remember(kind: PickKind, value: string): Promise<void> {
    await this.services.context.workspaceState.update(`loraDrop.last.${kind}`, value);
  }

  private remembered(kind: PickKind): string | undefined {
    return this.services.context.workspaceState.get<string>(`loraDrop.last.${kind}`);
  }

  private async browse(kind: PickKind): Promise<string> {
    const text = TEXT[kind];
    const root = vscode.workspace.workspaceFolders?.[0]?.uri;
    const remembered = this.remembered(kind);
    const uris = await vscode.window.showOpenDialog({
      title: text.browse,
      openLabel: "Select",
      canSelectFolders: text.folders,
      canSelectFiles: !text.folders,
      canSelectMany: false,
      defaultUri: remembered ? vscode.Uri.file(text.folders ? remembered : path.dirname(remembered)) : root,
      ...(text.folders ? {} : { filters: { Datasets: ["jsonl", "txt"], "All files": ["*"] } }),
    });
    const uri = uris?.[0];
    if (!uri) throw new CancelledError(`${text.title} selection`);
    return uri.fsPath;
  }

  private find(): Promise<Candidates> {
    this.candidates ??= (async () => {
      const uris = await vscode.workspace.findFiles(CANDIDATE_GLOB, CANDIDATE_EXCLUDE, 10000);
      return classifyCandidates(uris.map((u) => u.fsPath), this.services.allOutputFolders());
    })();
    return this.candidates;
  }
}

/** A path as shown in a pick: workspace-relative when inside a workspace folder. */
function describe(p: string, roots: readonly string[]): string {
  for (const r of roots) {
    const rel = path.relative(r, p);
    if (!rel.startsWith("..") && !path.isAbsolute(rel)) return roots.length > 1 ? `${path.basename(r)}/${rel}` : rel || ".";
  }
  return p;
}
