/**
 * The names inside a demo workspace (demoWorkspace.ts writes it). Kept apart from the writer, which loads the
 * trainer and onnxruntime, so the extension host can recognise a demo workspace without loading the engine.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The marker file at the workspace's root: a demo workspace is recognised by it. */
export const DEMO_MARKER = "lora-drop-demo.json";

/** The model folder, the adapter folder and the dataset, relative to the workspace. */
export const DEMO_FILES = { model: "model", adapter: "adapter", data: "data.jsonl" } as const;

/** True when `dir` holds a demo workspace (its marker file). */
export function isDemoWorkspace(dir: string): boolean {
  return fs.existsSync(path.join(dir, DEMO_MARKER));
}
