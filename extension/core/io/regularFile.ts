/**
 * The one way the engine opens a file it reads. A path can name a FIFO (an open blocks until a writer appears), a
 * character device such as /dev/zero (a read never ends) or a socket, and a symlink can make any file look like a
 * config: so every reader opens non-blocking, checks with fstat that the opened file is a regular file, and checks
 * its size against the reader's limit before reading a byte. The fstat is of the opened descriptor, so a file
 * swapped after a check cannot slip through.
 */
import * as fs from "node:fs";
import { LoraDropError, type ErrorCode } from "../util/errors";

/** What a reader asks of a file. */
export interface RegularFileOptions {
  /** Largest size accepted, in bytes. */
  maxBytes: number;
  /** The error code of a file over the limit (default FILE_UNREADABLE). */
  tooLargeCode?: ErrorCode;
  /** What the file is, for messages ("a JSON configuration file", "a profile"). */
  what?: string;
}

/** An open regular file: its descriptor and the size fstat reported. */
export interface OpenedFile {
  fd: number;
  size: number;
}

/** The kind of a non-regular file, in words, for messages. */
export function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** The typed error of a failed open or read, by errno. */
export function openError(e: unknown, file: string, verb = "read"): LoraDropError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return new LoraDropError("FILE_NOT_FOUND", "file not found", file);
  if (code === "EACCES" || code === "EPERM") return new LoraDropError("FILE_UNREADABLE", `cannot ${verb}: permission denied`, file);
  // A socket cannot be opened at all (ENXIO); a symlink loop gives ELOOP.
  if (code === "ENXIO") return new LoraDropError("FILE_UNREADABLE", "not a regular file (a socket or a device without a reader)", file);
  if (code === "ELOOP") return new LoraDropError("FILE_UNREADABLE", "too many levels of symbolic links", file);
  return new LoraDropError("FILE_UNREADABLE", `cannot ${verb} (${code ?? (e as Error).message})`, file);
}

/**
 * Opens `file` for reading without ever blocking and returns its descriptor once fstat has confirmed a regular file
 * within the size limit. The caller closes the descriptor.
 */
export function openRegularFile(file: string, opts: RegularFileOptions): OpenedFile {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; on a regular file it changes nothing.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw openError(e, file);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new LoraDropError("FILE_UNREADABLE", `${fileKind(st)}, not a regular file; give the path of ${opts.what ?? "a file"}`, file);
    if (st.size > opts.maxBytes) {
      throw new LoraDropError(opts.tooLargeCode ?? "FILE_UNREADABLE", `file is ${st.size} bytes, more than the ${opts.maxBytes}-byte limit for ${opts.what ?? "this file"}`, file);
    }
    return { fd, size: st.size };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Reads a whole regular file of at most `opts.maxBytes` bytes. The limit is also enforced while reading: a file that
 * grows after fstat (or a /proc file, whose reported size is 0) is cut off at the limit and refused.
 */
export function readRegularFile(file: string, opts: RegularFileOptions): Buffer {
  const { fd, size } = openRegularFile(file, opts);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    let chunk = Buffer.alloc(Math.max(1, Math.min(size + 1, opts.maxBytes + 1, 1 << 24)));
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        throw openError(e, file);
      }
      if (n === 0) break;
      total += n;
      if (total > opts.maxBytes) {
        throw new LoraDropError(opts.tooLargeCode ?? "FILE_UNREADABLE", `file is more than the ${opts.maxBytes}-byte limit for ${opts.what ?? "this file"}`, file);
      }
      chunks.push(chunk.subarray(0, n));
      chunk = Buffer.alloc(chunk.length);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a whole regular file as UTF-8 text (invalid bytes become U+FFFD, as readFileSync does). */
export function readRegularText(file: string, opts: RegularFileOptions): string {
  return readRegularFile(file, opts).toString("utf8");
}
