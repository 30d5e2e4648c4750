/**
 * Profiles an adapter with the PyTorch engine. The Node side reads the model config, the adapter and the dataset
 * exactly as the onnx engine does (same validation, same tokenisation, same batches), the engine measures with
 * transformers + PEFT, and the profile file is assembled by the same code as the onnx engine's (assembleProfile),
 * so the profile schema has one writer.
 */
import * as path from "node:path";
import { loadHfModel } from "../models/hfModel";
import { Adapter, loadAdapter, moduleName } from "../adapter/peftAdapter";
import { peftFolderFor } from "../torch/peftFolder";
import { batchesOf } from "../data/batch";
import { ProfileFile } from "./profileSchema";
import { readSafetensorsIndex, readTensorF32 } from "../io/safetensors";
import { LoraDropError } from "../util/errors";
import { RunContext } from "../util/progress";
import { runTorchEngine, withWorkDir } from "../torch/engineProcess";
import { engineLabel } from "../torch/engineChoice";
import { torchDevice } from "../torch/engineOptions";
import { writeExamplesFile } from "../torch/examplesFile";
import { TORCH_PROTOCOL_VERSION, TorchLoraEntry, TorchProfileRequest, type TorchCriterion } from "../torch/protocol";
import { assembleProfile } from "./assemble";
import { profileAblation } from "./ablation";
import { loadExamples } from "../data/examples";
import { ProfileOptions } from "./options";

/**
 * Runs a profile with the torch engine and returns the profile file's content. Takes ProfileOptions as
 * profileAdapter does (which calls it for engine torch); the onnx engine's own fields (memory budget, streaming)
 * do not apply: the torch engine holds the whole model on its device.
 */
export async function torchProfile(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const criterion = opts.criterion ?? "output";
  // Ablation is measured through loss evaluations, which both engines run (ablation.ts, evaluate/scoreSets.ts).
  if (criterion === "ablation") return profileAblation(opts, ctx);
  return (await torchProfiles(opts, [criterion], ctx))[criterion]!;
}

/** Several criteria from one engine run (the model is loaded once); one profile file per criterion. */
export async function torchProfiles(opts: ProfileOptions, criteria: TorchCriterion[], ctx: RunContext = {}): Promise<Partial<Record<TorchCriterion, ProfileFile>>> {
  const started = Date.now();
  const model = loadHfModel(opts.modelDir);
  const adapter = loadAdapter(opts.adapterDir, model.config);
  const profileOpts: ProfileOptions = { modelDir: opts.modelDir, adapterDir: opts.adapterDir, dataPath: opts.dataPath, maxExamples: opts.maxExamples ?? 64, maxTokens: opts.maxTokens ?? 128 };
  const examples = loadExamples(model, opts.dataPath, profileOpts.maxExamples!, profileOpts.maxTokens!);
  if (criteria.includes("gradient") && model.config.head === "seq-cls") {
    const unlabelled = examples.find((e) => e.label === undefined);
    if (unlabelled) throw new LoraDropError("DATASET_INVALID", `example ${unlabelled.example + 1} has no \`label\`: the gradient criterion on a sequence classifier needs the class of every example`, opts.dataPath, "label");
  }
  const loras: TorchLoraEntry[] = adapter.loras.map((l) => ({ name: moduleName(l.layer, l.module, model.config.architecture), layer: l.layer, module: l.module, param: l.param }));
  return withWorkDir(async (work) => {
    const examplesFile = path.join(work, "examples.jsonl");
    writeExamplesFile(examplesFile, examples);
    const position = new Map(examples.map((e, i) => [e, i]));
    const request: TorchProfileRequest = {
      version: TORCH_PROTOCOL_VERSION, command: "profile", model: path.resolve(opts.modelDir), architecture: model.config.architecture,
      task: model.config.head === "seq-cls" ? "seq-cls" : "causal-lm", dtype: opts.dtype ?? "float32", device: torchDevice(opts.device),
      ...(opts.threads ? { threads: opts.threads } : {}), examples: examplesFile, data: path.resolve(opts.dataPath),
      padTokenId: model.config.padTokenId ?? 0, loras, loraConfig: adapter.config.raw, outputDir: work,
      adapter: await peftFolderFor(adapter, work), criteria,
      batches: batchesOf(examples, opts.batchSize ?? 8).map((g) => g.map((e) => position.get(e)!)),
    };
    const res = await runTorchEngine(request, work, { python: opts.python, graceMs: opts.graceMs, env: opts.env }, ctx);
    const L = model.config.numLayers;
    const out: Partial<Record<TorchCriterion, ProfileFile>> = {};
    for (const criterion of criteria) {
      const measured = res.criteria[criterion];
      if (!measured || measured.raw.length !== loras.length) {
        throw new LoraDropError("ENGINE_FAILED", `the torch engine's ${criterion} result has ${measured?.raw.length ?? "no"} values for ${loras.length} LoRA modules`);
      }
      const perModuleRaw: Record<string, number[]> = {};
      for (const m of adapter.modules) perModuleRaw[m] = new Array(L).fill(0);
      loras.forEach((l, i) => { perModuleRaw[l.module]![l.layer]! += measured.raw[i]!; });
      const norms = criterion === "output" ? readNorms(measured.normsFile, adapter, examples.map((e) => e.ids.length), L) : undefined;
      out[criterion] = assembleProfile({ opts: profileOpts, model, adapter, examples, criterion, engine: "torch", device: engineLabel("torch", res.device, res.dtype), perModuleRaw, norms, started,
        ...(res.peakRssBytes !== undefined ? { peakRss: res.peakRssBytes } : {}) });
    }
    return out;
  });
}

/** norms[module][layer][sequence][token] from the engine's file (tensor `norms.{i}`: module i's tokens, sequences in order). */
function readNorms(file: string | undefined, adapter: Adapter, lengths: number[], L: number): Record<string, number[][][]> {
  if (!file) throw new LoraDropError("ENGINE_FAILED", "the torch engine's output result names no norms file");
  const index = readSafetensorsIndex(file);
  const norms: Record<string, number[][][]> = {};
  for (const m of adapter.modules) norms[m] = Array.from({ length: L }, () => lengths.map((n) => new Array(n).fill(0)));
  const total = lengths.reduce((a, b) => a + b, 0);
  adapter.loras.forEach((l, i) => {
    const { data } = readTensorF32(index, `norms.${i}`);
    if (data.length !== total) throw new LoraDropError("ENGINE_FAILED", `norms.${i} has ${data.length} values for ${total} tokens`, file, `norms.${i}`);
    let offset = 0;
    norms[l.module]![l.layer] = lengths.map((n) => {
      const row = Array.from(data.subarray(offset, offset + n));
      offset += n;
      return row;
    });
  });
  return norms;
}
