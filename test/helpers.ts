/**
 * Shared test helpers: temporary folders and fixture models generated on demand.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeTinyModel, writeTinyAdapter, writeSyntheticDataset, TinyModelOptions, TinyAdapterOptions } from "../extension/core/demo/tinyModel";

/** The repository's root (tests run compiled, from out/test). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The CLI launcher, as `npx lora-drop` runs it. */
export const BIN = path.join(REPO_ROOT, "bin", "lora-drop.js");

/** A fresh temporary folder, removed when the process exits. */
export function tmpDir(prefix = "lora-drop-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A model + adapter + dataset triple in a temporary folder. */
export interface Fixture {
  root: string;
  modelDir: string;
  adapterDir: string;
  dataFile: string;
}

/** Writes a fixture triple with the given options. */
export function makeFixture(model: TinyModelOptions = {}, adapter: TinyAdapterOptions = {}, data: { count?: number; kind?: "text" | "prompt" } = {}): Fixture {
  const root = tmpDir();
  const modelDir = path.join(root, "model");
  const adapterDir = path.join(root, "adapter");
  const dataFile = path.join(root, "data.jsonl");
  const cfg = writeTinyModel(modelDir, model);
  writeTinyAdapter(adapterDir, cfg, adapter);
  writeSyntheticDataset(dataFile, data);
  return { root, modelDir, adapterDir, dataFile };
}

/** Largest |a-b| / (|b| + floor) over two arrays, with its index. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): { err: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let err = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor);
    if (e > err || Number.isNaN(e)) { err = Number.isNaN(e) ? Infinity : e; at = i; }
  }
  return { err, at };
}

/**
 * SHA-256 of every file under a folder (or of one file), by relative path, plus what `extra` says of each file's
 * stat (its mtime or mode, to see that a file was not rewritten or re-permissioned either).
 */
export function treeHashes(p: string, extra?: (st: fs.Stats) => string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (f: string, rel: string): void => {
    const st = fs.statSync(f);
    if (st.isDirectory()) for (const e of fs.readdirSync(f).sort()) walk(path.join(f, e), path.join(rel, e));
    else out[rel] = `${crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex")}${extra ? ` ${extra(st)}` : ""}`;
  };
  walk(p, ".");
  return out;
}
