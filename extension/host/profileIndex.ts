/**
 * Finds the latest profile of an adapter among the saved profiles, without parsing every file: a profile
 * written by the engine starts with its small header (schema, model, adapter…) and only then the large norms,
 * so reading the first kilobytes is enough to learn which adapter it belongs to.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROFILE_SCHEMA } from "../core/importance/profileSchema";

/** How much of a file is read to find its header fields. */
const HEAD_BYTES = 64 * 1024;

/** What the head of a profile file says about it. */
export interface ProfileHead {
  file: string;
  adapterPath: string;
  mtimeMs: number;
}

/**
 * Reads `"adapter":{"path":"…"` from the first bytes of a profile file, or undefined when the file is not a
 * profile (wrong schema tag, or the field is not within the head, e.g. a pretty-printed foreign file).
 */
export function readProfileHead(file: string): ProfileHead | undefined {
  let fd: number | undefined;
  try {
    // Non-blocking and regular files only, as the engine's readers: a FIFO named *.json must not block the host.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = fs.readSync(fd, buf, 0, HEAD_BYTES, 0);
    const head = buf.subarray(0, n).toString("utf8");
    return parseProfileHead(head, file, fs.fstatSync(fd).mtimeMs);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Parses the head text of a profile file (see readProfileHead). */
export function parseProfileHead(head: string, file: string, mtimeMs: number): ProfileHead | undefined {
  if (!new RegExp(`"schema"\\s*:\\s*"${PROFILE_SCHEMA.replace(/\./g, "\\.")}"`).test(head)) return undefined;
  const m = /"adapter"\s*:\s*\{\s*"path"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(head);
  if (!m) return undefined;
  try {
    const adapterPath = JSON.parse(m[1]!) as unknown;
    return typeof adapterPath === "string" ? { file, adapterPath, mtimeMs } : undefined;
  } catch {
    return undefined;
  }
}

/** The `*.json` files directly inside `dir` (none when it does not exist). */
export function listJsonFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(".json")).map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}

/** The newest profile among `heads` whose adapter is `adapterDir` (paths compared resolved). */
export function latestProfileOf(heads: readonly ProfileHead[], adapterDir: string): ProfileHead | undefined {
  const want = path.resolve(adapterDir);
  return heads.filter((h) => path.resolve(h.adapterPath) === want).sort((a, b) => b.mtimeMs - a.mtimeMs || (a.file < b.file ? 1 : -1))[0];
}

/** The newest profile of `adapterDir` saved in any of `folders`, or undefined. */
export function findLatestProfile(folders: readonly string[], adapterDir: string): string | undefined {
  const heads = folders.flatMap(listJsonFiles).map(readProfileHead).filter((h): h is ProfileHead => h !== undefined);
  return latestProfileOf(heads, adapterDir)?.file;
}
