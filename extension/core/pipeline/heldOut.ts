/**
 * The pipeline's held-out scores: the mean loss of the LoRA-drop adapter, of the full LoRA and of the base model
 * on the held-out split, and for a sequence classifier the accuracy (and, for two classes, Matthews correlation)
 * as GLUE scores them. Measured on the engine the pipeline trained with: onnxruntime here, or one torch-engine run
 * that loads the model once per adapter.
 */
import * as path from "node:path";
import { type Adapter } from "../adapter/peftAdapter";
import { withAdapterHead } from "../adapter/adapterHead";
import type { TokenizedExample } from "../data/dataset";
import { batchesOf } from "../data/batch";
import type { HfModel } from "../models/hfModel";
import { evaluateLoss } from "../train/train";
import { classificationMetrics, evaluateClassifier } from "../train/classification";
import { headTensorShapes } from "../train/classifierHead";
import type { RunContext } from "../util/progress";
import { runTorchEngine, withWorkDir } from "../torch/engineProcess";
import { writeExamplesFile } from "../torch/examplesFile";
import { peftFolderFor } from "../torch/peftFolder";
import { onnxDevice, torchDevice, type EngineOptions } from "../torch/engineOptions";
import type { EngineDevice } from "../torch/engineChoice";
import { TORCH_PROTOCOL_VERSION, type TorchEvaluateRequest } from "../torch/protocol";
import type { EvalMetrics } from "./report";

/** One model's held-out scores: null where not measured (no held-out examples; a bare encoder has no classifier). */
export interface HeldOutScore { loss: number | null; metrics: EvalMetrics | null }

/** How the held-out split is scored. */
export interface HeldOutOptions extends EngineOptions {
  modelDir: string;
  device?: EngineDevice;
  threads?: number;
  batchSize?: number;
}

/** Scores each of `adapters` (undefined: the base model) on `examples`, in order. */
export async function scoreHeldOut(model: HfModel, adapters: (Adapter | undefined)[], examples: TokenizedExample[], opts: HeldOutOptions, ctx: RunContext = {}): Promise<HeldOutScore[]> {
  const none: HeldOutScore = { loss: null, metrics: null };
  // A bare encoder has no classifier of its own, so the base model has no score.
  const headless = model.config.head === "seq-cls" && headTensorShapes(model).some((t) => !model.weights.has(t.name));
  const scored = adapters.map((a) => examples.length > 0 && (a !== undefined || !headless));
  const wanted = adapters.filter((_, i) => scored[i]);
  const results = opts.engine === "torch" ? await torchScores(model, wanted, examples, opts, ctx) : await onnxScores(model, wanted, examples, opts);
  let next = 0;
  return scored.map((s) => (s ? results[next++]! : none));
}

/** The onnx engine's scores: the loss through evaluateLoss, the classes through evaluateClassifier. */
async function onnxScores(model: HfModel, adapters: (Adapter | undefined)[], examples: TokenizedExample[], opts: HeldOutOptions): Promise<HeldOutScore[]> {
  const run = { device: onnxDevice(opts.device), threads: opts.threads, batchSize: opts.batchSize };
  const out: HeldOutScore[] = [];
  for (const adapter of adapters) {
    // A sequence classifier is scored with the head each adapter saved (trained with it); the base model with its own.
    const loss = await evaluateLoss(opts.modelDir, adapter?.loras ?? [], examples, { ...run, ...(adapter ? { adapter } : {}) });
    let metrics: EvalMetrics | null = null;
    if (model.config.head === "seq-cls") {
      const { predicted: _p, ...m } = await evaluateClassifier(adapter ? withAdapterHead(model, adapter) : model, adapter?.loras ?? [], examples, run);
      metrics = m;
    }
    out.push({ loss, metrics });
  }
  return out;
}

/** The torch engine's scores: one run, the model loaded afresh for each adapter. */
async function torchScores(model: HfModel, adapters: (Adapter | undefined)[], examples: TokenizedExample[], opts: HeldOutOptions, ctx: RunContext): Promise<HeldOutScore[]> {
  if (adapters.length === 0) return [];
  return withWorkDir(async (work) => {
    const file = path.join(work, "examples.jsonl");
    writeExamplesFile(file, examples);
    const position = new Map(examples.map((e, i) => [e, i]));
    const request: TorchEvaluateRequest = {
      version: TORCH_PROTOCOL_VERSION, command: "evaluate", model: path.resolve(opts.modelDir), architecture: model.config.architecture,
      task: model.config.head === "seq-cls" ? "seq-cls" : "causal-lm", dtype: opts.dtype ?? "float32", device: torchDevice(opts.device),
      ...(opts.threads ? { threads: opts.threads } : {}), examples: file, data: file, padTokenId: model.config.padTokenId ?? 0, outputDir: work,
      adapters: await Promise.all(adapters.map(async (a, i) => (a ? { dir: await peftFolderFor(a, work, `adapter-${i}`), loraConfig: a.config.raw } : null))),
      batches: batchesOf(examples, opts.batchSize ?? 8).map((g) => g.map((e) => position.get(e)!)),
    };
    const res = await runTorchEngine(request, work, { python: opts.python, graceMs: opts.graceMs, env: opts.env }, ctx);
    const numLabels = model.config.numLabels ?? 2;
    return res.evaluations.map((e) => ({
      loss: e.loss,
      metrics: e.predicted && model.config.head === "seq-cls" ? classificationMetrics(e.predicted, examples.map((x) => x.label ?? -1), numLabels) : null,
    }));
  });
}
