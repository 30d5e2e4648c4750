/**
 * LoRA training with the PyTorch engine, with the onnx engine's semantics. The Node side does everything that
 * decides what is trained on and what is written: the settings and their defaults, tokenisation, the LoRA layout
 * (targets, ranks, LoRA-drop's shared pairs and their starting values), and the step plan from the same seeded
 * data order; the engine runs the steps with transformers + PEFT and hands back the trained tensors, which are
 * written with the same adapter writer as the onnx engine's (formats, the lora_drop record, atomicity).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel } from "../models/hfModel";
import { moduleName, writeAdapter } from "../adapter/peftAdapter";
import { readSafetensorsIndex, readTensorF32 } from "../io/safetensors";
import { LoraDropError } from "../util/errors";
import { RunContext } from "../util/progress";
import type { TrainEvent } from "./train";
import { resolveSettings, fingerprintOf, type TrainOptions } from "./settings";
import { DataOrder, stepsPerEpoch } from "./dataOrder";
import { layoutForRun, type LoraLayout } from "./loraSetup";
import { headAdapterKey, headTensorShapes, SEQ_CLS_MODULES_TO_SAVE } from "./classifierHead";
import { EngineRunOptions, runTorchEngine, TorchEngineOptions, withWorkDir } from "../torch/engineProcess";
import { writeExamplesFile } from "../torch/examplesFile";
import { TorchLaunch } from "../torch/launcher";
import { TORCH_PROTOCOL_VERSION, TorchTrainRequest, TorchTrainResult } from "../torch/protocol";
import { countLoraParams } from "../adapter/loraModule";
import { loadTrainingExamples } from "../data/examples";
import { removeDirAtomic } from "../io/atomicWrite";

/** TrainOptions (less the onnx engine's own: streaming, prepacking, its device list) plus the torch engine's. */
export interface TorchTrainOptions extends Omit<TrainOptions, "device" | "threads" | "prepack" | "memoryBudget" | "stream" | "finalEval">, TorchEngineOptions {
  /** One process (default), N local processes, torchrun or accelerate. */
  launch?: TorchLaunch;
  /** Called with the engine's process ids once started. */
  onSpawn?: EngineRunOptions["onSpawn"];
}

/** What a torch training run produced. */
export interface TorchTrainOutcome {
  adapterDir: string; device: string; steps: number;
  losses: { step: number; loss: number; lr: number }[];
  finalLoss: number; trainableParams: number; headParams: number; seconds: number;
  /** The trained tensors by engine key: `{param}.A`, `{param}.B` (param `L{layer}.{module}` or `shared.{module}`), `head.{weight}`. */
  tensors: Map<string, Float32Array>;
  /** Processes that trained (data-parallel world size). */
  worldSize: number;
}

/** Trains a LoRA (or continues an adapter) with the torch engine and writes it as a PEFT adapter folder. */
export async function torchTrain(opts: TorchTrainOptions, ctx: RunContext & { onStep?: (e: TrainEvent) => void } = {}): Promise<TorchTrainOutcome> {
  const started = Date.now();
  const s = resolveSettings(opts as TrainOptions);
  if (fs.existsSync(opts.outDir) && !opts.force) throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", opts.outDir);
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

  const result = await withWorkDir(async (work) => {
    const examplesFile = path.join(work, "examples.jsonl");
    writeExamplesFile(examplesFile, examples);
    let initAdapter: string | null = null;
    if (opts.initAdapterDir) {
      // The layout's values (a LoRA-drop adapter's shared pairs bound, a new share set's starting values) as a
      // standard PEFT folder, so PEFT loads exactly what the onnx engine would start from.
      initAdapter = path.join(work, "init-adapter");
      await writeAdapter(initAdapter, layout.config, layout.modules, { format: "peft" });
    }
    const request: TorchTrainRequest = {
      version: TORCH_PROTOCOL_VERSION, command: "train", model: path.resolve(opts.modelDir), architecture: model.config.architecture,
      task: model.config.head === "seq-cls" ? "seq-cls" : "causal-lm", dtype, device: opts.device ?? "auto",
      ...(opts.threads ? { threads: opts.threads } : {}), examples: examplesFile, data: path.resolve(opts.dataPath),
      padTokenId: model.config.padTokenId ?? 0, outputDir: work,
      loras: layout.modules.map((l) => ({ name: moduleName(l.layer, l.module, model.config.architecture), layer: l.layer, module: l.module, param: l.param })),
      loraConfig: layout.config.raw, initAdapter, trainHead, plan,
      lr: s.lr, schedule: s.schedule, warmupSteps: s.warmupSteps, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm, seed: s.seed,
      checkpointEvery: s.checkpointEvery, checkpointDir: s.checkpointEvery > 0 || opts.resume ? checkpointDir : null, resume: opts.resume ?? false,
      fingerprint: { ...fingerprintOf(opts as TrainOptions, s, totalSteps, examples.length), engine: "torch", dtype },
    };
    if (opts.logFile && !opts.resume) {
      fs.mkdirSync(path.dirname(path.resolve(opts.logFile)), { recursive: true });
      fs.writeFileSync(opts.logFile, "");
    }
    const loopStart = Date.now();
    const res = (await runTorchEngine(request, work, {
      python: opts.python, launch: opts.launch, graceMs: opts.graceMs, env: opts.env, onSpawn: opts.onSpawn,
      onStep: ({ type: _line, ...st }) => {
        const elapsed = (Date.now() - loopStart) / 1000;
        const event: TrainEvent = { ...st, etaSeconds: (elapsed / Math.max(1, st.step)) * (st.totalSteps - st.step) };
        ctx.onStep?.(event);
        if (opts.logFile) fs.appendFileSync(opts.logFile, JSON.stringify({ event: "step", ...event, time: new Date().toISOString() }) + "\n");
      },
    }, ctx)) as TorchTrainResult;
    return { res, tensors: readTrained(res.tensorsFile) };
  });

  const head = applyTrained(layout, result.tensors, result.res.tensorsFile);
  // As the onnx engine: a LoRA-drop record (stated by the caller, or carried over from the initial adapter) is written, its form honoured.
  const record = opts.loraDrop ?? layout.record;
  const headOverrides = head.length ? { modules_to_save: layout.config.raw.modules_to_save ?? SEQ_CLS_MODULES_TO_SAVE } : {};
  await writeAdapter(opts.outDir, layout.config, layout.modules, {
    force: opts.force, configOverrides: headOverrides, ...(record ? { record } : {}),
    format: record?.format === "compact" ? "compact" : "peft", ...(head.length ? { head } : {}),
  });
  // As the onnx engine: the default checkpoint beside the output only serves to finish this run; a named one stays.
  if (!opts.checkpointDir && fs.existsSync(checkpointDir)) removeDirAtomic(checkpointDir);
  if (opts.logFile) fs.appendFileSync(opts.logFile, JSON.stringify({ event: "done", adapter: path.resolve(opts.outDir), steps: totalSteps }) + "\n");
  const { res } = result;
  return {
    adapterDir: opts.outDir, device: `torch ${res.device}`, steps: res.steps, losses: res.losses,
    finalLoss: res.losses.length ? res.losses[res.losses.length - 1]!.loss : NaN, trainableParams: countLoraParams(layout.modules),
    headParams: res.headParams, seconds: (Date.now() - started) / 1000, worldSize: res.worldSize,
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
