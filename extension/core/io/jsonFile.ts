/**
 * Reading the JSON files of a model or adapter folder (config.json, adapter_config.json, the shard index, the
 * lora_drop.json sidecar): a regular file only, its size checked before reading, errors that name the file.
 */
import { LoraDropError, type ErrorCode } from "../util/errors";
import { readRegularText } from "./regularFile";

/** Largest JSON configuration file read (config.json, adapter_config.json, the shard index). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Reads a JSON file (at most MAX_JSON_BYTES), with errors that name it; `code` is the error of bad content. */
export function readJsonFile(file: string, code: ErrorCode = "CONFIG_INVALID"): unknown {
  const text = readRegularText(file, { maxBytes: MAX_JSON_BYTES, tooLargeCode: code, what: "a JSON configuration file" });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LoraDropError(code, `not valid JSON (${(e as Error).message})`, file);
  }
}
