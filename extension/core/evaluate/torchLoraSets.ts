/**
 * The torch engine's side of evaluateLoraSets: the same configurations, scored by PyTorch + transformers + PEFT in
 * one Python child process (python/lora_drop_torch/lora_sets.py). The configurations are built here, by the same
 * code as for the onnx engine (a sweep's candidates by buildPrunedAdapter, shared pairs included), and handed over
 * as tensors: every distinct A and B once, in one safetensors file in the run's private work folder (removed after),
 * each configuration naming per LoRA module the keys of its pair, or null for no LoRA there. The engine loads the
 * model and the adapter once and sets each configuration into PEFT's LoRA layers.
 */
import * as path from "node:path";
import { moduleName, type Adapter } from "../adapter/peftAdapter";
import { batchesOf, makeBatch } from "../data/batch";
import type { TokenizedExample } from "../data/dataset";
import type { HfModel } from "../models/hfModel";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors";
import { countTargets } from "../runtime/lossSession";
import { engineLabel } from "../torch/engineChoice";
import { torchDevice } from "../torch/engineOptions";
import { runTorchEngine, withWorkDir } from "../torch/engineProcess";
import { writeExamplesFile } from "../torch/examplesFile";
import { peftFolderFor } from "../torch/peftFolder";
import { TORCH_PROTOCOL_VERSION, type TorchEvaluateSetsRequest } from "../torch/protocol";
import { LoraDropError } from "../util/errors";
import type { RunContext } from "../util/progress";
import { layoutSlots, paramsForSet, type Evaluation, type EvaluationOptions, type LoraSetSource, type SetScore } from "./loraSets";

/** Scores every configuration of `sets` (each a configuration of `adapter`'s layout) with the torch engine. */
export async function torchLoraSets(model: HfModel, adapter: Adapter, sets: LoraSetSource, examples: TokenizedExample[], opts: EvaluationOptions = {}, ctx: RunContext = {}): Promise<Evaluation> {
  const started = Date.now();
  const cfg = model.config;
  const classification = cfg.head === "seq-cls";
  // transformers would give a classifier without head weights (a bare encoder whose adapter saved none) a random
  // one: refused rather than scored.
  const head = cfg.architecture === "roberta" ? "classifier.out_proj.weight" : "classifier.weight";
  if (classification && !model.weights.has(head)) throw new LoraDropError("TENSOR_MISSING", `the model has no ${head} and the adapter saved no classification head`, adapter.dir, head);
  // Padded as the onnx engine pads (a RoBERTa's positions depend on the pad id), in the same batches.
  const pad = classification ? cfg.padTokenId ?? 0 : 0;
  const groups = batchesOf(examples, opts.batchSize ?? 8);
  const targets = groups.reduce((a, g) => a + countTargets(makeBatch(g, pad), classification), 0);
  if (targets === 0) throw new LoraDropError("DATASET_EMPTY", "no example has a token to predict");
  const tokens = examples.reduce((a, e) => a + e.ids.length, 0);
  const { tensors, entries } = setTensors(adapter, sets);
  return withWorkDir(async (work) => {
    const examplesFile = path.join(work, "examples.jsonl");
    writeExamplesFile(examplesFile, examples);
    const tensorsFile = path.join(work, "lora-sets.safetensors");
    writeSafetensors(tensorsFile, tensors);
    const position = new Map(examples.map((e, i) => [e, i]));
    const request: TorchEvaluateSetsRequest = {
      version: TORCH_PROTOCOL_VERSION, command: "evaluate-sets", model: path.resolve(model.dir), architecture: cfg.architecture,
      task: classification ? "seq-cls" : "causal-lm", dtype: opts.dtype ?? "float32", device: torchDevice(opts.device),
      ...(opts.threads ? { threads: opts.threads } : {}), examples: examplesFile, data: examplesFile, padTokenId: pad,
      loras: adapter.loras.map((l) => ({ name: moduleName(l.layer, l.module, cfg.architecture), layer: l.layer, module: l.module, param: l.param })),
      loraConfig: adapter.config.raw, outputDir: work, adapter: await peftFolderFor(adapter, work), tensorsFile, sets: entries,
      batches: groups.map((g) => g.map((e) => position.get(e)!)),
    };
    const res = await runTorchEngine(request, work, { python: opts.python, graceMs: opts.graceMs, env: opts.env }, ctx);
    if (res.evaluations.length !== sets.count) {
      throw new LoraDropError("ENGINE_FAILED", `the torch engine scored ${res.evaluations.length} configurations of ${sets.count}`);
    }
    const scores = res.evaluations.map((e, i): SetScore => {
      if (!classification) return { loss: e.loss };
      if (!e.predicted || e.predicted.length !== examples.length) throw new LoraDropError("ENGINE_FAILED", `the torch engine's classes of configuration ${i + 1} are not one per example`);
      return { loss: e.loss, accuracy: examples.filter((x, j) => e.predicted![j] === x.label).length / targets };
    });
    scores.forEach((s, i) => opts.onScore?.(i, s));
    return {
      scores, device: engineLabel("torch", res.device, res.dtype), streamed: false, examples: examples.length, tokens, targets,
      seconds: (Date.now() - started) / 1000, peakRssBytes: res.peakRssBytes ?? 0,
    };
  });
}

/** Marks a (layer, module) a configuration leaves without LoRA (paramsForSet's zeros, never written). */
const NO_LORA = new Float32Array(0);

/**
 * The tensors of every configuration, each distinct array once (a kept layer's pair is the adapter's own array, a
 * shared pair one array for all its layers), and per configuration the keys of each LoRA module's pair or null.
 * paramsForSet checks that every pair fits its module, as for the onnx engine.
 */
function setTensors(adapter: Adapter, sets: LoraSetSource): { tensors: TensorToWrite[]; entries: ([string, string] | null)[][] } {
  const slots = layoutSlots(adapter.loras);
  const keys = new Map<Float32Array, string>();
  const tensors: TensorToWrite[] = [];
  const key = (data: Float32Array, shape: number[]): string => {
    let k = keys.get(data);
    if (k === undefined) {
      k = `t${keys.size}`;
      keys.set(data, k);
      tensors.push({ name: k, dtype: "F32", shape, data });
    }
    return k;
  };
  const entries = Array.from({ length: sets.count }, (_, i) => {
    const params = paramsForSet(slots, sets.get(i), () => NO_LORA);
    return slots.map((s): [string, string] | null => {
      const p = params.get(s.param)!;
      return p.A === NO_LORA ? null : [key(p.A, [s.r, s.inFeatures]), key(p.B, [s.outFeatures, s.r])];
    });
  });
  return { tensors, entries };
}
