/**
 * Reading the JSON files of a model or adapter folder (config.json, adapter_config.json, the shard index): size
 * checked before reading, errors that name the file.
 */
import * as fs from "node:fs";
import { LoraDropError } from "../util/errors";

/** Largest JSON configuration file read (config.json, adapter_config.json, the shard index). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Reads a JSON file (at most MAX_JSON_BYTES), with errors that name it. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    // Checked before reading so that a multi-gigabyte file in the place of a config costs nothing.
    const size = fs.statSync(file).size;
    if (size > MAX_JSON_BYTES) throw new LoraDropError("CONFIG_INVALID", `file is ${size} bytes, more than the ${MAX_JSON_BYTES}-byte limit for a JSON configuration file`, file);
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof LoraDropError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoraDropError(code === "ENOENT" ? "FILE_NOT_FOUND" : "FILE_UNREADABLE", code === "ENOENT" ? "file not found" : `cannot read (${code})`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LoraDropError("CONFIG_INVALID", `not valid JSON (${(e as Error).message})`, file);
  }
}
