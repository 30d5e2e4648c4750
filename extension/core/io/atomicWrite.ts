/**
 * Atomic writes. A file is written to a temporary name in the same folder, flushed, then renamed over the target;
 * a folder is built under a temporary name and renamed into place when complete. A reader therefore sees either
 * the complete result or nothing, whatever moment the process is killed at.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "../util/errors";

/** What went wrong with a write, in words, and what to do about it. */
function describe(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOSPC") return "the disk is full (free some space or write to another disk)";
  if (code === "EDQUOT") return "the disk quota is exceeded (free some space or write to another disk)";
  if (code === "EACCES" || code === "EPERM") return "permission denied (choose a folder you can write to)";
  if (code === "EROFS") return "the file system is read-only";
  if (code === "ENOENT") return "its folder does not exist";
  return (e as Error).message;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Cleans what a killed writer left beside `target`: temporary names `.<base>.tmp-<pid>-<time>[-old]` whose
 * process is gone. A `-old` folder is the previous complete output, moved aside while a `--force` replacement was
 * being put in place; if the target is missing it is moved back (so a kill never loses both), else it is removed.
 */
export function removeStaleTemps(target: string): void {
  const parent = path.dirname(path.resolve(target));
  const base = path.basename(target);
  const re = new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.tmp-(\\d+)-\\d+(-old)?$`);
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names.sort((a, b) => Number(b.endsWith("-old")) - Number(a.endsWith("-old")))) {
    const m = re.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const full = path.join(parent, name);
    try {
      if (m[2] && !fs.existsSync(target)) fs.renameSync(full, target);
      else fs.rmSync(full, { recursive: true, force: true });
    } catch { /* best effort: a leftover temporary never affects a reader */ }
  }
}

/**
 * Removes a folder so that no reader ever sees it half-deleted: it is renamed to a temporary name first (which
 * removeStaleTemps cleans if the process is killed during the deletion), then deleted.
 */
export function removeDirAtomic(dir: string): void {
  const tmp = path.join(path.dirname(dir), `.${path.basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  fs.renameSync(dir, tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
}

/** Writes `data` to `file` atomically. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  removeStaleTemps(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
    throw new LoraDropError("WRITE_FAILED", `cannot write: ${describe(e)}`, file);
  }
}

/**
 * Builds a folder atomically: `fill` writes into a fresh temporary sibling folder, which is renamed to `dir`
 * only when `fill` returns. An existing `dir` is refused unless `force`, in which case it is replaced only after
 * the new folder is complete.
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void> | void, force = false): Promise<void> {
  removeStaleTemps(dir);
  if (fs.existsSync(dir) && !force) {
    throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", dir);
  }
  const parent = path.dirname(path.resolve(dir));
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new LoraDropError("WRITE_FAILED", `cannot create the parent folder: ${describe(e)}`, parent);
  }
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  try {
    fs.mkdirSync(tmp);
  } catch (e) {
    // Named by the output the user chose: the temporary name beside it means nothing to them.
    throw new LoraDropError("WRITE_FAILED", `cannot create the folder: ${describe(e)}`, dir);
  }
  try {
    await fill(tmp);
    if (fs.existsSync(dir)) {
      const old = `${tmp}-old`;
      fs.renameSync(dir, old);
      fs.renameSync(tmp, dir);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dir);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof LoraDropError) throw inOutput(e, tmp, dir);
    throw new LoraDropError("WRITE_FAILED", `cannot write: ${describe(e)}`, dir);
  }
}

/** An error about a file inside the temporary folder, re-addressed to where that file was going in `dir`. */
function inOutput(e: LoraDropError, tmp: string, dir: string): LoraDropError {
  if (!e.file || (e.file !== tmp && !e.file.startsWith(tmp + path.sep))) return e;
  const file = dir + e.file.slice(tmp.length);
  const message = e.message.startsWith(`${e.file}: `) ? e.message.slice(e.file.length + 2) : e.message;
  return new LoraDropError(e.code, message, file, e.field);
}
