/**
 * Where the extension reads and writes: adapter folders from Explorer selections, the pruned adapter's folder
 * name, profile file names, the output folder and export targets. Pure Node (`path` only, no `vscode`), so the
 * path-safety rules are unit-tested: nothing a webview message carries can make the host write outside the
 * workspace.
 */
import * as path from "node:path";
import { isSafeExportName, type ExportFormat } from "../viewModel/protocol";
import type { PruneMode } from "../core/adapter/dropRecord";

/** The files that identify a PEFT adapter folder when selected in the Explorer. */
export const ADAPTER_FILES: readonly string[] = ["adapter_config.json", "adapter_model.safetensors"];

/** True when `child` is `parent` or lies inside it (both resolved; no ".." escape, no other drive). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** The workspace folder that contains `file`, if any (the deepest one, for nested workspace folders). */
export function containingRoot(file: string, roots: readonly string[]): string | undefined {
  return roots.filter((r) => isInside(file, r)).sort((a, b) => b.length - a.length)[0];
}

/** The adapter folder for an Explorer selection: the folder itself, or the folder of one of its two files. */
export function adapterDirOf(selected: string): string {
  return ADAPTER_FILES.includes(path.basename(selected)) ? path.dirname(selected) : selected;
}

/** The threshold as written in folder names: two decimals, more only when they matter (0.9 → "0.90", 0.925 → "0.925"). */
export function formatThreshold(threshold: number): string {
  for (let digits = 2; digits <= 6; digits++) {
    const s = threshold.toFixed(digits);
    if (Math.abs(Number(s) - threshold) < 1e-12) return s;
  }
  return threshold.toFixed(6);
}

/** The pruned adapter's folder, next to the source: `<name>-lora-drop-T0.90` (`-drop` appended in drop mode). */
export function prunedAdapterDir(adapterDir: string, threshold: number, mode: PruneMode): string {
  const src = path.resolve(adapterDir);
  const suffix = `-lora-drop-T${formatThreshold(threshold)}${mode === "drop" ? "-drop" : ""}`;
  return path.join(path.dirname(src), `${path.basename(src)}${suffix}`);
}

/** A file-name-safe slug of a folder name: [A-Za-z0-9._-] only, at most 80 characters. */
export function slug(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/_+/g, "_").replace(/^[._]+|_+$/g, "").slice(0, 80);
  return s || "adapter";
}

/** A sortable local time stamp for file names: 20250131-235959. */
export function timeStamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** The name a new profile of `adapterDir` is saved under: `<adapter>-<stamp>.profile.json`. */
export function profileFileName(adapterDir: string, date: Date): string {
  return `${slug(path.basename(path.resolve(adapterDir)))}-${timeStamp(date)}.profile.json`;
}

/**
 * The absolute output folder: the workspace-relative setting joined to the workspace root. Refuses a value
 * that would leave the workspace (the settings reader already rejects those; this is the last check).
 */
export function outputFolderPath(workspaceRoot: string, outputFolder: string): string {
  const dir = path.resolve(workspaceRoot, outputFolder);
  if (!isInside(dir, workspaceRoot) || path.resolve(workspaceRoot) === dir) {
    throw new Error(`The output folder "${outputFolder}" must be a folder inside the workspace ${workspaceRoot}.`);
  }
  return dir;
}

/**
 * Where an export suggested by the panel is proposed: `fileName` (re-validated here: a plain base name with the
 * format's extension) inside `folder`. Returns undefined for anything that could climb out of the folder.
 */
export function exportTarget(folder: string, fileName: string, format: ExportFormat): string | undefined {
  if (!isSafeExportName(fileName, format)) return undefined;
  const target = path.join(folder, fileName);
  return path.dirname(target) === path.resolve(folder) ? target : undefined;
}

/** The bytes to write for an export: the PNG data URL decoded, or the text as UTF-8. */
export function exportBytes(format: ExportFormat, content: string): Buffer {
  if (format === "png") {
    const m = /^data:image\/png;base64,([A-Za-z0-9+/]+={0,2})$/.exec(content);
    if (!m) throw new Error("The PNG export is not a base64 PNG data URL.");
    const bytes = Buffer.from(m[1]!, "base64");
    // The PNG signature: anything else is not what the panel claimed to send.
    if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x89504e47 || bytes.readUInt32BE(4) !== 0x0d0a1a0a) {
      throw new Error("The PNG export does not start with a PNG signature.");
    }
    return bytes;
  }
  return Buffer.from(content, "utf8");
}

/**
 * Checks a path the user chose in a save dialog: it must lie inside one of the workspace folders. The dialog
 * starts in the workspace; this keeps a panel-initiated write there even if the user navigates away.
 */
export function checkInsideWorkspace(file: string, roots: readonly string[]): string | undefined {
  if (roots.length === 0) return "Open a folder first: LoRA-drop saves its files inside the workspace.";
  return containingRoot(file, roots) ? undefined : `${file} is outside the workspace; choose a location inside ${roots.join(" or ")}.`;
}

/** The folder name the demo workspace gets inside a folder that already holds something. */
export const DEMO_FOLDER_NAME = "lora-drop-demo";

/**
 * Where the demo workspace goes when the user picks `picked`: that folder when it is new or empty, else a new
 * `lora-drop-demo` (then `-2`, `-3`…) inside it, so nothing of the user's is mixed with it. `list` returns a
 * folder's entries, or undefined when it does not exist.
 */
export function demoFolderFor(picked: string, list: (dir: string) => string[] | undefined): string {
  const entries = list(picked);
  if (entries === undefined || entries.length === 0) return path.resolve(picked);
  for (let i = 1; ; i++) {
    const name = i === 1 ? DEMO_FOLDER_NAME : `${DEMO_FOLDER_NAME}-${i}`;
    if (!entries.includes(name)) return path.join(path.resolve(picked), name);
  }
}
