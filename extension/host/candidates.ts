/**
 * Finds, among the files of a workspace, what the pickers offer: base model folders, adapter folders and
 * datasets. Pure: it classifies a list of paths (VS Code's findFiles supplies them), so it is unit-tested.
 */
import * as path from "node:path";

/** The glob that finds every file the classification looks at. */
export const CANDIDATE_GLOB = "**/{config.json,adapter_config.json,*.safetensors,*.jsonl,*.txt}";
/** Folders never searched: dependencies, VCS data, build outputs. */
export const CANDIDATE_EXCLUDE = "**/{node_modules,.git,out,dist,.venv,venv,__pycache__}/**";

/** What the pickers offer. */
export interface Candidates {
  /** Folders with config.json and at least one *.safetensors, that are not adapters. */
  models: string[];
  /** Folders with adapter_config.json. */
  adapters: string[];
  /** *.jsonl and *.txt files outside model and adapter folders; .jsonl first. */
  datasets: string[];
}

/** Text files that come with tokenizers and projects, not datasets. */
const NOT_DATASETS = new Set(["merges.txt", "vocab.txt", "requirements.txt", "license.txt", "readme.txt", "cmakelists.txt", "spiece.txt"]);

/** Classifies workspace files into candidates. `excludeDirs` (e.g. the output folder) are skipped. */
export function classifyCandidates(files: readonly string[], excludeDirs: readonly string[] = []): Candidates {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = path.dirname(f);
    if (!byDir.has(dir)) byDir.set(dir, new Set());
    byDir.get(dir)!.add(path.basename(f));
  }
  const models: string[] = [];
  const adapters: string[] = [];
  for (const [dir, names] of byDir) {
    if (names.has("adapter_config.json")) adapters.push(dir);
    else if (names.has("config.json") && [...names].some((n) => n.endsWith(".safetensors"))) models.push(dir);
  }
  const special = new Set([...models, ...adapters]);
  const excluded = (f: string) => excludeDirs.some((d) => f.startsWith(d + path.sep));
  const datasets = files
    .filter((f) => /\.(jsonl|txt)$/i.test(f) && !special.has(path.dirname(f)) && !excluded(f) && !NOT_DATASETS.has(path.basename(f).toLowerCase()))
    .sort((a, b) => Number(b.endsWith(".jsonl")) - Number(a.endsWith(".jsonl")) || a.localeCompare(b));
  return { models: models.sort(), adapters: adapters.sort(), datasets };
}

/** Puts the remembered choice first (when it is still among the candidates, or `keepMissing`), without duplicates. */
export function rememberedFirst(items: readonly string[], remembered: string | undefined, keepMissing = false): string[] {
  if (!remembered) return [...items];
  const rest = items.filter((i) => path.resolve(i) !== path.resolve(remembered));
  return rest.length < items.length || keepMissing ? [remembered, ...rest] : [...items];
}
