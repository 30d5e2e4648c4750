/**
 * Atomic writes. A file is written to a temporary name in the same folder, flushed, then renamed over the target;
 * a folder is built under a temporary name and renamed into place when complete. A reader therefore sees either
 * the complete result or nothing, whatever moment the process is killed at.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "./errors";

function describe(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOSPC") return "the disk is full";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EROFS") return "the file system is read-only";
  return (e as Error).message;
}

/** Writes `data` to `file` atomically. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
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
    throw new LoraDropError("WRITE_FAILED", `cannot create a folder: ${describe(e)}`, tmp);
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
    if (e instanceof LoraDropError) throw e;
    throw new LoraDropError("WRITE_FAILED", `cannot write: ${describe(e)}`, dir);
  }
}
