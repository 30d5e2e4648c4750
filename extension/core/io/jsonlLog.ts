/**
 * A JSONL log file written line by line while a run goes on (training's `--log`). Each write opens the file
 * non-blocking and checks with fstat that it is a regular file: a FIFO with no reader, a device such as /dev/full,
 * or a folder is refused with WRITE_FAILED naming the file, never waited on and never an internal error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "../util/errors";
import { fileKind } from "./regularFile";

function writeError(e: unknown, file: string): LoraDropError {
  if (e instanceof LoraDropError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === "EISDIR" ? "it is a folder"
    : code === "ENXIO" ? "it is a FIFO or device with no reader"
      : code === "ENOSPC" ? "the disk is full"
        : code === "EACCES" || code === "EPERM" ? "permission denied"
          : code === "EROFS" ? "the file system is read-only"
            : code ?? (e as Error).message;
  return new LoraDropError("WRITE_FAILED", `cannot write the log: ${why}`, file);
}

function writeChecked(file: string, flags: number, text: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, flags | fs.constants.O_WRONLY | fs.constants.O_NONBLOCK, 0o644);
  } catch (e) {
    throw writeError(e, file);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new LoraDropError("WRITE_FAILED", `cannot write the log: it is ${fileKind(st)}, not a regular file`, file);
    if (text) fs.writeSync(fd, text);
  } catch (e) {
    throw writeError(e, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Starts a log: creates its folder and the file, emptied (`truncate`) or kept to be appended to (a resumed run). */
export function startJsonlLog(file: string, truncate: boolean): void {
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  } catch (e) {
    throw writeError(e, file);
  }
  writeChecked(file, fs.constants.O_CREAT | (truncate ? fs.constants.O_TRUNC : fs.constants.O_APPEND), "");
}

/** Appends one JSON record as a line. */
export function appendJsonl(file: string, record: unknown): void {
  writeChecked(file, fs.constants.O_CREAT | fs.constants.O_APPEND, JSON.stringify(record) + "\n");
}
