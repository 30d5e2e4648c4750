/**
 * LoRA training with the PyTorch engine, with the onnx engine's semantics. The Node side does everything that
 * decides what is trained on and what is written: the settings and their defaults, tokenisation, the LoRA layout
 * (targets, ranks, LoRA-drop's shared pairs and their starting values), and the step plan from the same seeded
 * data order; the engine runs the steps with transformers + PEFT and hands back the trained tensors, which are
 * written with the same adapter writer as the onnx engine's (formats, the lora_drop record, atomicity).
 *
 * In a multi-node run every node's Node side runs this with its own node rank; each gets the trained tensors, and
 * only node 0 writes the adapter, the log and the checkpoints' clean-up (the other nodes' outcome carries their
 * `nodeRank`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../models/hfModel";
import { moduleName, writeAdapter } from "../adapter/peftAdapter";
import { readSafetensorsIndex, readTensorF32 } from "../io/safetensors";
import { batchesOf } from "../data/batch";
import { LoraDropError } from "../util/errors";
import { RunContext } from "../util/progress";
import { resolveSettings, fingerprintOf, type TrainEvent, type TrainOptions, type TrainResult } from "./settings";
import { DataOrder, stepsPerEpoch } from "./dataOrder";
import { layoutForRun, type LoraLayout } from "./loraSetup";
import { headAdapterKey, headTensorShapes, SEQ_CLS_MODULES_TO_SAVE } from "./classifierHead";
import { EngineRunOptions, runTorchEngine, withWorkDir } from "../torch/engineProcess";
import { writeExamplesFile } from "../torch/examplesFile";
import { nodeRankOf } from "../torch/launcher";
import { engineLabel } from "../torch/engineChoice";
import { torchDevice } from "../torch/engineOptions";
import { TORCH_PROTOCOL_VERSION, TorchTrainRequest } from "../torch/protocol";
import { countLoraParams } from "../adapter/loraModule";
import { loadTrainingExamples } from "../data/examples";
import { removeDirAtomic } from "../io/atomicWrite";
import { appendJsonl, startJsonlLog } from "../io/jsonlLog";

/** What a torch training run produced: a TrainResult, plus the trained tensors (the tests compare engines on them). */
export interface TorchTrainOutcome extends TrainResult {
  /** The trained tensors by engine key: `{param}.A`, `{param}.B` (param `L{layer}.{module}` or `shared.{module}`), `head.{weight}`. */
  tensors: Map<string, Float32Array>;
  worldSize: number;
  /** Peak resident bytes of the engine's answering process, and on CUDA its GPU allocator's peak. */
  peakRssBytes?: number;
  gpuPeakBytes?: number;
}

/** The callbacks of a torch training run: each step, and the engine's process ids once started (tests kill them). */
export type TorchTrainContext = RunContext & { onStep?: (e: TrainEvent) => void; onSpawn?: EngineRunOptions["onSpawn"] };

/**
 * Trains a LoRA (or continues an adapter) with the torch engine and writes it as a PEFT adapter folder. Takes
 * TrainOptions as trainLora does (which calls it for engine torch); the onnx engine's own fields (streaming,
 * memory budget, prepacking) do not apply.
 */
export async function torchTrain(opts: TrainOptions, ctx: TorchTrainContext = {}): Promise<TorchTrainOutcome> {
  const started = Date.now();
  const s = resolveSettings(opts);
  // Only node 0 writes: the other nodes of a multi-node run check nothing of an output that is not theirs.
  const nodeRank = nodeRankOf(opts.launch);
  const writes = nodeRank === 0 || opts.everyNodeWrites === true;
  if (writes && fs.existsSync(opts.outDir) && !opts.force) throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", opts.outDir);
  const model = loadHfModel(opts.modelDir);
  const examples = loadTrainingExamples(model, opts.dataPath, s.maxTokens, opts.exampleIndices, ctx.log);
  const layout = layoutForRun(model, opts, s, ctx.log);
  const dropout = layout.config.loraDropout;
  if (!(dropout >= 0 && dropout < 1)) throw new LoraDropError("INVALID_ARGUMENT", `lora_dropout must be in [0, 1), got ${dropout}`, undefined, "loraDropout");
  const trainHead = model.config.head === "seq-cls" && opts.trainHead !== false;
  if (model.config.head === "seq-cls" && !trainHead && !opts.initAdapterDir && headTensorShapes(model).some((t) => !model.weights.has(t.name))) {
    throw new LoraDropError("INVALID_ARGUMENT", "the classification head cannot stay frozen: the model has no classifier (a bare encoder); let it train", opts.modelDir, "trainHead");
  }
  const totalSteps = opts.steps ?? s.epochs * stepsPerEpoch(examples.length, s.batchSize, s.gradAccum);
  // The same seeded order as the onnx engine: both engines see the same micro-batches in the same steps.
  const order = new DataOrder(examples.length, s.batchSize, s.gradAccum, s.seed + 1_000_003);
  const plan = Array.from({ length: totalSteps }, () => order.nextStep());
  const checkpointDir = opts.checkpointDir ?? `${path.resolve(opts.outDir)}.checkpoint`;
  const dtype = opts.dtype ?? "float32";
  const logFile = writes ? opts.logFile : undefined;
  const position = new Map(examples.map((e, i) => [e, i]));

  const result = await withWorkDir(async (work) => {
    const examplesFile = path.join(work, "examples.jsonl");
    writeExamplesFile(examplesFile, examples);
    // The layout's values (a LoRA-drop adapter's shared pairs bound, a new share set's starting values, or a fresh
    // LoRA drawn as PEFT draws it: A Kaiming-uniform, B zero) as a standard PEFT folder, so PEFT starts from exactly
    // what the onnx engine starts from, and the two engines train the same trajectory from the same seed.
    const initAdapter = path.join(work, "init-adapter");
    await writeAdapter(initAdapter, layout.config, layout.modules, { format: "peft" });
    const request: TorchTrainRequest = {
      version: TORCH_PROTOCOL_VERSION, command: "train", model: path.resolve(opts.modelDir), architecture: model.config.architecture,
      task: model.config.head === "seq-cls" ? "seq-cls" : "causal-lm", dtype, device: torchDevice(opts.device),
      ...(opts.threads ? { threads: opts.threads } : {}), examples: examplesFile, data: path.resolve(opts.dataPath),
      padTokenId: model.config.padTokenId ?? 0, outputDir: work,
      loras: layout.modules.map((l) => ({ name: moduleName(l.layer, l.module, model.config.architecture), layer: l.layer, module: l.module, param: l.param })),
      loraConfig: layout.config.raw, initAdapter, trainHead, plan,
      lr: s.lr, schedule: s.schedule, warmupSteps: s.warmupSteps, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm, seed: s.seed,
      checkpointEvery: s.checkpointEvery, checkpointDir: s.checkpointEvery > 0 || opts.resume ? checkpointDir : null, resume: opts.resume ?? false,
      fingerprint: { ...fingerprintOf(opts, s, totalSteps, examples.length), engine: "torch", dtype },
      // The onnx engine's final evaluation goes over the same batches (meanLoss: batchesOf the examples).
      ...(opts.finalEval ? { evalBatches: batchesOf(examples, s.batchSize).map((g) => g.map((e) => position.get(e)!)) } : {}),
    };
    if (logFile) startJsonlLog(logFile, !opts.resume);
    const loopStart = Date.now();
    const res = await runTorchEngine(request, work, {
      python: opts.python, launch: opts.launch, graceMs: opts.graceMs, env: opts.env, onSpawn: ctx.onSpawn,
      onStep: ({ type: _line, ...st }) => {
        const elapsed = (Date.now() - loopStart) / 1000;
        const event: TrainEvent = { ...st, etaSeconds: (elapsed / Math.max(1, st.step)) * (st.totalSteps - st.step) };
        ctx.onStep?.(event);
        if (logFile) appendJsonl(logFile, { event: "step", ...event, time: new Date().toISOString() });
      },
    }, ctx);
    return { res, tensors: readTrained(res.tensorsFile) };
  });

  const head = applyTrained(layout, result.tensors, result.res.tensorsFile);
  if (writes) {
    // As the onnx engine: a LoRA-drop record (stated by the caller, or carried over from the initial adapter) is written, its form honoured.
    const record = opts.loraDrop ?? layout.record;
    const headOverrides = head.length ? { modules_to_save: layout.config.raw.modules_to_save ?? SEQ_CLS_MODULES_TO_SAVE } : {};
    await writeAdapter(opts.outDir, layout.config, layout.modules, {
      force: opts.force, configOverrides: headOverrides, ...(record ? { record } : {}),
      format: record?.format === "compact" ? "compact" : "peft", ...(head.length ? { head } : {}),
    });
    // As the onnx engine: the default checkpoint beside the output only serves to finish this run; a named one stays.
    if (!opts.checkpointDir && fs.existsSync(checkpointDir)) removeDirAtomic(checkpointDir);
    if (logFile) appendJsonl(logFile, { event: "done", adapter: path.resolve(opts.outDir), steps: totalSteps });
  }
  const { res } = result;
  return {
    adapterDir: opts.outDir, device: engineLabel("torch", res.device, res.dtype), steps: res.steps, losses: res.losses,
    finalLoss: res.losses.length ? res.losses[res.losses.length - 1]!.loss : NaN, trainableParams: countLoraParams(layout.modules),
    headParams: res.headParams, seconds: (Date.now() - started) / 1000, worldSize: res.worldSize, ...(nodeRank > 0 ? { nodeRank } : {}),
    ...(res.finalEvalLoss !== undefined ? { finalEvalLoss: res.finalEvalLoss } : {}),
    ...(res.peakRssBytes !== undefined ? { peakRssBytes: res.peakRssBytes } : {}), ...(res.gpuPeakBytes !== undefined ? { gpuPeakBytes: res.gpuPeakBytes } : {}),
    tensors: new Map([...result.tensors].map(([k, t]) => [k, t.data])),
  };
}

/** A tensor as read back from the engine. */
interface Trained { shape: number[]; data: Float32Array }

/** Every tensor of the engine's output file, as float32 (read before the work folder holding it goes). */
function readTrained(file: string): Map<string, Trained> {
  const index = readSafetensorsIndex(file);
  const out = new Map<string, Trained>();
  for (const name of index.tensors.keys()) out.set(name, readTensorF32(index, name));
  return out;
}

/** Copies the trained values into the layout's pairs (so every module bound to a pair gets them); returns the head tensors to write. */
function applyTrained(layout: LoraLayout, tensors: Map<string, Trained>, file: string): { name: string; shape: number[]; data: Float32Array }[] {
  for (const p of layout.params.values()) {
    for (const [which, dest] of [["A", p.A], ["B", p.B]] as const) {
      const key = `${p.name}.${which}`;
      const t = tensors.get(key)?.data;
      if (!t) throw new LoraDropError("ENGINE_FAILED", `the torch engine returned no ${key}`, file, key);
      if (t.length !== dest.length) throw new LoraDropError("ENGINE_FAILED", `${key} has ${t.length} values, expected ${dest.length}`, file, key);
      if (!t.every(Number.isFinite)) throw new LoraDropError("NUMERICAL", `the trained ${key} is not finite`, file, key);
      dest.set(t);
    }
  }
  return [...tensors].filter(([k]) => k.startsWith("head.")).map(([k, t]) => ({ name: headAdapterKey(k.slice("head.".length)), shape: t.shape, data: t.data }));
}
