/**
 * The shape of the hostile corpus and the valid starting points every case is mutated from. Shared by the
 * generator (which writes the cases), the runner (which feeds them to the engine in a child process) and the test.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ErrorCode } from "../../extension/core/util/errors";
import { Rng } from "../../extension/core/util/random";
import { writeTinyModel, writeTinyAdapter, writeSyntheticDataset } from "../../extension/core/demo/tinyModel";
import { pick, splitSafetensors, joinSafetensors, tensorsOf } from "./stMutate";
import { ModelConfig } from "../../extension/core/models/config";

/** Which public entry point a case goes through. */
export type EntryPoint =
  | "safetensors" // readSafetensorsIndex, then readTensorF32 of every tensor
  | "model" // loadHfModel
  | "adapter" // loadAdapter against the model in modelDir
  | "dataset" // readDataset + tokenizeExamples
  | "profile" // readProfile
  | "run" // profileAdapter (the whole profile command without the CLI)
  | "prune" // pruneAdapter with `options`
  | "train" // trainLora with `options` (a resumed run when they say so)
  | "cli"; // the CLI's main() in the runner process, with `argv`

/** The kind of input a case corrupts; the report counts per category. */
export type Category = "safetensors" | "model" | "tokenizer" | "adapter" | "dataset" | "profile"
  | "special" | "output" | "checkpoint" | "train" | "options";

/** One hostile input and what the engine must answer. JSON-serialisable: it crosses to the runner process. */
export interface HostileCase {
  id: string;
  category: Category;
  family: string;
  note: string;
  entry: EntryPoint;
  file?: string;
  modelDir?: string;
  adapterDir?: string;
  dataFile?: string;
  /** Dataset cases: tokenise with the tokenizer of this model folder (else no tokenizer). */
  tokenizerModelDir?: string;
  vocabSize?: number;
  criterion?: "output" | "weight" | "gradient";
  /** The LoraDropError code the engine must throw. */
  expect: ErrorCode;
  /** A path the error message must contain. */
  names: string;
  /** Must be refused without allocating what the file claims; run first, in a fresh process, with memory measured. */
  lowMemory?: boolean;
  /** Options of a prune or train entry (JSON: they cross to the runner). */
  options?: Record<string, unknown>;
  /** The command line of a cli entry (after `lora-drop`). */
  argv?: string[];
  /** Paths (files or folders) the case must leave byte-identical: the run's inputs. */
  inputs?: string[];
}

/** The valid inputs the cases start from. */
export interface Bases {
  /** Tiny Llama without tokenizer (vocab 256), its q/v adapter and an input_ids dataset. */
  modelDir: string;
  adapterDir: string;
  idsData: string;
  config: ModelConfig;
  /** The same model in BF16 (a second safetensors layout to mutate). */
  bf16Model: string;
  /** The model split over two shards with model.safetensors.index.json. */
  shardedDir: string;
  /** A tiny model with Llama 2's real tokenizer, its adapter and a text dataset. */
  tokModelDir: string;
  tokAdapterDir: string;
  textData: string;
  tokConfig: ModelConfig;
  /** A valid profile of model + adapter + idsData (written when the profile cases are generated). */
  profileFile?: string;
  /** Pruned forms of `adapterDir` (written with the reliability cases): share (peft and compact) and drop. */
  pruned?: { share: string; compact: string; drop: string };
  /** A checkpoint folder of a 3-step run on model + idsData, and the options that made it (a resume must repeat them). */
  checkpoint?: { dir: string; options: Record<string, unknown> };
}

/** Writes the valid starting points (deterministic for a seed). */
export function writeBases(dir: string, seed: number): Bases {
  const dims = { tokenizer: false, hiddenSize: 16, numHeads: 4, numKvHeads: 2, numLayers: 3, intermediateSize: 32, vocabSize: 256 } as const;
  const modelDir = path.join(dir, "model");
  const config = writeTinyModel(modelDir, { ...dims, seed });
  const adapterDir = path.join(dir, "adapter");
  writeTinyAdapter(adapterDir, config, { seed: seed + 1, r: 4, targets: ["q_proj", "v_proj"] });
  const idsData = path.join(dir, "ids.jsonl");
  const rng = new Rng(seed + 2);
  const lines = Array.from({ length: 6 }, () => JSON.stringify({ input_ids: Array.from({ length: 4 + rng.int(12) }, () => rng.int(dims.vocabSize)) }));
  fs.writeFileSync(idsData, lines.join("\n") + "\n");
  const bf16Model = path.join(dir, "model-bf16");
  writeTinyModel(bf16Model, { ...dims, numLayers: 2, dtype: "BF16", seed: seed + 3 });
  const shardedDir = path.join(dir, "model-sharded");
  writeTinyModel(shardedDir, { ...dims, shards: 2, seed });
  const tokModelDir = path.join(dir, "model-tok");
  const tokConfig = writeTinyModel(tokModelDir, { tokenizer: true, hiddenSize: 16, numHeads: 4, numKvHeads: 2, numLayers: 2, intermediateSize: 32, seed: seed + 4 });
  const tokAdapterDir = path.join(dir, "adapter-tok");
  writeTinyAdapter(tokAdapterDir, tokConfig, { seed: seed + 5, r: 2, targets: ["q_proj", "down_proj"] });
  const textData = path.join(dir, "text.jsonl");
  writeSyntheticDataset(textData, { seed: seed + 6, count: 8 });
  return { modelDir, adapterDir, idsData, config, bf16Model, shardedDir, tokModelDir, tokAdapterDir, textData, tokConfig };
}

/** Copies a folder's files, hard-linking the large weight files (cases only read them). */
export function cloneDir(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) {
    const from = path.join(src, f);
    const to = path.join(dst, f);
    if (f.endsWith(".safetensors")) fs.linkSync(from, to);
    else fs.copyFileSync(from, to);
  }
}

/** Adds cases; each gets its own folder under `root/cases`. */
export class CaseWriter {
  readonly cases: HostileCase[] = [];
  private readonly counts = new Map<string, number>();
  constructor(readonly root: string, readonly rng: Rng, readonly bases: Bases) {}

  /** A fresh folder for the next case of a family, and its id. */
  next(family: string): { id: string; dir: string } {
    const n = (this.counts.get(family) ?? 0) + 1;
    this.counts.set(family, n);
    const id = `${family}-${String(n).padStart(2, "0")}`;
    const dir = path.join(this.root, "cases", id);
    fs.mkdirSync(dir, { recursive: true });
    return { id, dir };
  }

  /** Records a case. */
  add(c: HostileCase): void {
    this.cases.push(c);
  }
}

/** Sets one element of a stored F32 tensor in safetensors bytes to `value` (NaN, ±Inf, or a huge number). */
export function poke(bytes: Buffer, tensor: string | ((name: string) => boolean), value: number, rng: Rng): { bytes: Buffer; name: string } {
  const p = splitSafetensors(bytes);
  const t = pick(rng, tensorsOf(p).filter((x) => (typeof tensor === "string" ? x.name === tensor : tensor(x.name))));
  if (t.dtype !== "F32") throw new Error(`poke needs F32, ${t.name} is ${t.dtype}`);
  const i = rng.int((t.end - t.begin) / 4);
  p.data.writeFloatLE(value, t.begin + 4 * i);
  return { bytes: joinSafetensors(p), name: t.name };
}
