/**
 * LoRA fine-tuning on onnxruntime-node: the training graph (loss + LoRA gradients, trainGraph.ts) runs each
 * micro-batch; gradients accumulate over `gradAccum` micro-batches, are clipped by global norm and applied by
 * AdamW in TypeScript, under a warm-up + decay schedule. Shared LoRA (LoRA-drop's share set) is one parameter pair
 * bound to several modules; the autodiff sums its gradients. The result is a PEFT adapter folder written
 * atomically; checkpoints make a resumed run bit-identical to an uninterrupted one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel, HfModel } from "../models/hfModel";
import { Adapter, loadAdapter, writeAdapter } from "../adapter/peftAdapter";
import { TokenizedExample } from "../data/dataset";
import { makeBatch, batchesOf, Batch } from "../data/batch";
import { slotOf } from "../runtime/loraRunner";
import { DeviceChoice } from "../runtime/session";
import { RunContext } from "../util/progress";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import { Rng } from "../util/random";
import { LossSession, LoraParam, ParamGrads, countTargets, HeadParam, paramsOf } from "../runtime/lossSession";
import { defaultMemoryBudget, describePlan, formatBytes, planStreaming, RunShape, StreamChoice, StreamPlan, STREAMED_ARCHITECTURES, trainingExtraBytes, wholeTrainingActivationBytes } from "../stream/memoryBudget";
import { streamedLoraGradients } from "../stream/streamGrad";
import { isEncoder, isLlamaFamily } from "../models/arch";
import type { ModelConfig } from "../models/config";
import { AdamW, ADAMW_DEFAULTS, clipGradNorm } from "./optim";
import { learningRate } from "./schedule";
import { DataOrder, DataOrderState, stepsPerEpoch } from "./dataOrder";
import { layoutForRun } from "./loraSetup";
import { headAdapterKey, headParamCount, headTensorShapes, initialHead, SEQ_CLS_MODULES_TO_SAVE } from "./classifierHead";
import { CheckpointState, CHECKPOINT_VERSION, checkCheckpointFolder, headKey, readCheckpoint, restoreTensors, writeCheckpoint } from "./checkpoint";
import { resolveSettings, TrainOptions, TrainSettings, fingerprintOf, type TrainEvent, type TrainResult } from "./settings";
import { torchTrain } from "./torchTrain";
import { checkEngineOptions, onnxDevice } from "../torch/engineOptions";
import { withAdapterHead } from "../adapter/adapterHead";
import { LoraModule, countLoraParams } from "../adapter/loraModule";
import { loadTrainingExamples } from "../data/examples";
import { removeDirAtomic } from "../io/atomicWrite";
import { checkRunPaths } from "../io/outputGuard";
import { appendJsonl, startJsonlLog } from "../io/jsonlLog";

/** The step event and the outcome of a training, on either engine (defined beside TrainOptions). */
export type { TrainEvent, TrainResult } from "./settings";

/**
 * Trains a LoRA (or continues an adapter) on the chosen engine and writes it as a PEFT adapter folder: onnxruntime
 * in this process, or PyTorch + transformers + PEFT in Python child processes (torchTrain.ts), with the same
 * settings, step plan and output.
 */
export async function trainLora(opts: TrainOptions, ctx: RunContext & { onStep?: (e: TrainEvent) => void } = {}): Promise<TrainResult> {
  const engine = checkEngineOptions(opts);
  const checkpointDir = opts.checkpointDir ?? `${path.resolve(opts.outDir)}.checkpoint`;
  // Before anything is written: no output may be, contain or lie inside an input, and a folder the checkpoint would
  // replace must be a checkpoint.
  checkRunPaths([
    { path: opts.modelDir, role: "the model folder", option: "--model" },
    { path: opts.dataPath, role: "the dataset", option: "--data" },
    opts.initAdapterDir !== undefined ? { path: opts.initAdapterDir, role: "the initial adapter", option: "--adapter" } : undefined,
  ], [
    { path: opts.outDir, role: "the adapter folder", option: "--out" },
    opts.logFile !== undefined ? { path: opts.logFile, role: "the log file", option: "--log" } : undefined,
    { path: checkpointDir, role: "the checkpoint folder", option: opts.checkpointDir !== undefined ? "--checkpoint-dir" : "(the checkpoint folder <out>.checkpoint)" },
  ]);
  checkCheckpointFolder(checkpointDir);
  if (engine === "torch") return torchTrain(opts, ctx);
  return onnxTrain(opts, onnxDevice(opts.device), ctx);
}

/** trainLora on the onnx engine, on one of its devices. */
async function onnxTrain(opts: TrainOptions, device: DeviceChoice, ctx: RunContext & { onStep?: (e: TrainEvent) => void }): Promise<TrainResult> {
  const started = Date.now();
  const s = resolveSettings(opts);
  const checkpointDir = opts.checkpointDir ?? `${path.resolve(opts.outDir)}.checkpoint`;
  if (fs.existsSync(opts.outDir) && !opts.force) {
    throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", opts.outDir);
  }
  let model = loadHfModel(opts.modelDir);
  // A SEQ_CLS adapter's saved classifier (modules_to_save) is the head the loss goes through; it stays frozen.
  if (opts.initAdapterDir && isEncoder(model.config.architecture)) model = withAdapterHead(model, loadAdapter(opts.initAdapterDir, model.config));
  const examples = loadTrainingExamples(model, opts.dataPath, s.maxTokens, opts.exampleIndices, ctx.log);
  const layout = layoutForRun(model, opts, s, ctx.log);
  const head = classifierHeadToTrain(model, opts, s, ctx.log);
  const dropoutP = layout.config.loraDropout;
  if (!(dropoutP >= 0 && dropoutP < 1)) throw new LoraDropError("INVALID_ARGUMENT", `lora_dropout must be in [0, 1), got ${dropoutP}`, undefined, "loraDropout");

  const totalSteps = opts.steps ?? s.epochs * stepsPerEpoch(examples.length, s.batchSize, s.gradAccum);
  const adam = new AdamW({ ...ADAMW_DEFAULTS, weightDecay: s.weightDecay });
  const dropoutRng = new Rng(s.seed + 2_000_003);
  const fingerprint = fingerprintOf(opts, s, totalSteps, examples.length);
  let losses: TrainResult["losses"] = [];
  let startStep = 0;
  let tokensBefore = 0;
  let dataState: DataOrderState | undefined;
  if (opts.resume) {
    const cp = readCheckpoint(checkpointDir);
    if (cp) {
      const stateFile = path.join(checkpointDir, "state.json");
      for (const [k, v] of Object.entries(fingerprint)) {
        if (JSON.stringify(cp.state.fingerprint[k]) !== JSON.stringify(v)) {
          throw new LoraDropError("INVALID_ARGUMENT", `the checkpoint was made with ${k} = ${JSON.stringify(cp.state.fingerprint[k])}, not ${JSON.stringify(v)}; resume with the same settings or start afresh without --resume`, stateFile, k);
        }
      }
      if (cp.state.order.length !== examples.length) {
        throw new LoraDropError("CONFIG_INVALID", `the checkpoint's data order has ${cp.state.order.length} examples, but the run has ${examples.length}; start afresh without --resume`, stateFile, "order");
      }
      restoreTensors(cp, layout.params, adam, path.join(checkpointDir, "tensors.safetensors"), head);
      dataState = { rng: cp.state.dataRng, epoch: cp.state.epoch, order: cp.state.order, position: cp.state.position };
      dropoutRng.state = cp.state.dropoutRng;
      startStep = cp.state.step;
      losses = cp.state.losses;
      tokensBefore = cp.state.tokens;
      ctx.log?.info(`resuming from ${checkpointDir} at step ${startStep} of ${totalSteps}`);
    } else {
      ctx.log?.info(`no checkpoint in ${checkpointDir}; starting from step 0`);
    }
  }
  const data = new DataOrder(examples.length, s.batchSize, s.gradAccum, s.seed + 1_000_003, dataState);
  if (opts.logFile) startJsonlLog(opts.logFile, startStep === 0);

  const slots = layout.modules.map(slotOf);
  const memory = trainingMemoryPlan(model, opts, device, s, examples, dropoutP, ctx.log);
  const streamPlan = memory.stream;
  const streamBlock = streamPlan?.layersPerBlock ?? 0;
  // Streaming never builds the whole graph: that is the memory it saves.
  const session = streamBlock ? undefined : await LossSession.create(model, slots, {
    gradients: true, dropout: dropoutP > 0, device, threads: opts.threads, prepack: opts.prepack, trainHead: head !== undefined, log: ctx.log,
    recomputeUp: memory.recomputeUp,
  });
  const engine: LossEngine = session
    ? { countTargets: (b) => session.countTargets(b), run: (bs, den, params) => runEach(session, bs, den, params, head) }
    : { countTargets: (b) => countTargets(b), run: (bs, den, params) => streamedLoraGradients(model, slots, params, bs, den, { device, threads: opts.threads, layersPerBlock: streamBlock, prefetch: streamPlan!.prefetch }) };
  let finalEvalLoss: number | undefined;
  try {
    const loopStart = Date.now();
    let tokens = tokensBefore;
    let tokensThisRun = 0;
    for (let step = startStep; step < totalSteps; step++) {
      throwIfCancelled(ctx.signal, "training");
      const lr = learningRate(s.schedule, s.lr, step, totalSteps, s.warmupSteps);
      const batches = data.nextStep().map((idx) => makeBatch(idx.map((i) => examples[i]!)));
      const denominator = batches.reduce((a, b) => a + engine.countTargets(b), 0);
      let loss = 0;
      let grads: Map<string, ParamGrads> | undefined;
      let headGrads: Map<string, Float32Array> | undefined;
      // Streamed: one pass over the step's micro-batches reads each layer's weights twice per step, not per micro-batch.
      if (!session) ({ loss, grads } = await engine.run(batches, denominator, layout.params));
      for (const batch of batches) {
        if (session) {
          const masks = dropoutP > 0 ? dropoutMasks(session, batch, dropoutP, dropoutRng) : undefined;
          const r = await session.run(batch, denominator, layout.params, masks, head);
          loss += r.loss;
          grads = grads ? addInto(grads, r.grads!) : r.grads!;
          if (r.headGrads) headGrads = headGrads ? addHeadInto(headGrads, r.headGrads) : r.headGrads;
        }
        const t = batch.mask.reduce((a, b) => a + b, 0);
        tokens += t;
        tokensThisRun += t;
        throwIfCancelled(ctx.signal, "training");
      }
      const n = step + 1;
      if (!Number.isFinite(loss)) throw new LoraDropError("NUMERICAL", `step ${n}: the loss is ${loss}; lower the learning rate or check the data`, opts.dataPath, "step");
      const all = [...grads!.values()].flatMap((g) => [g.A, g.B]).concat([...(headGrads?.values() ?? [])]);
      const gradNorm = clipGradNorm(all, s.maxGradNorm);
      if (!Number.isFinite(gradNorm)) throw new LoraDropError("NUMERICAL", `step ${n}: the gradient norm is ${gradNorm}; lower the learning rate or check the data`, opts.dataPath, "step");
      adam.beginStep();
      for (const p of layout.params.values()) {
        const g = grads!.get(p.name)!;
        adam.update(`${p.name}.A`, p.A, g.A, lr);
        adam.update(`${p.name}.B`, p.B, g.B, lr);
      }
      for (const h of head?.values() ?? []) adam.update(headKey(h.name), h.data, headGrads!.get(h.name)!, lr);
      // Nothing non-finite is ever written: a checkpoint or the adapter follows only a step whose values are all finite.
      assertFiniteValues(layout.params, head, n, lr, opts.dataPath);
      losses.push({ step: n, loss, lr });
      const elapsed = (Date.now() - loopStart) / 1000;
      const tokensPerSecond = tokensThisRun / Math.max(elapsed, 1e-3);
      const etaSeconds = (elapsed / (n - startStep)) * (totalSteps - n);
      const event: TrainEvent = { step: n, totalSteps, loss, lr, tokensPerSecond, etaSeconds, gradNorm };
      ctx.onStep?.(event);
      ctx.progress?.report({ step: n, total: totalSteps, message: `step ${n}/${totalSteps}, loss ${loss.toFixed(4)}`, tokensPerSecond });
      if (opts.logFile) appendJsonl(opts.logFile, { event: "step", ...event, time: new Date().toISOString() });
      if (s.checkpointEvery > 0 && n % s.checkpointEvery === 0 && n < totalSteps) {
        throwIfCancelled(ctx.signal, "training");
        const dState = data.state();
        const state: CheckpointState = {
          version: CHECKPOINT_VERSION, step: n, totalSteps, fingerprint, dataRng: dState.rng, dropoutRng: dropoutRng.state,
          epoch: dState.epoch, order: dState.order, position: dState.position, adamStep: adam.step, losses, tokens,
        };
        await writeCheckpoint(checkpointDir, state, layout.params, adam, head);
        ctx.log?.info(`checkpoint at step ${n}: ${checkpointDir}`);
      }
    }
    if (opts.finalEval) finalEvalLoss = await meanLoss(engine, examples, layout.params, s.batchSize, ctx);
  } finally {
    await session?.dispose();
  }
  throwIfCancelled(ctx.signal, "training");
  // A LoRA-drop record (stated by the caller, or carried over from the initial adapter) is written, its form honoured.
  const record = opts.loraDrop ?? layout.record;
  // A trained head is saved as PEFT saves modules_to_save, and the config says so.
  const headOverrides = head ? { modules_to_save: layout.config.raw.modules_to_save ?? SEQ_CLS_MODULES_TO_SAVE } : {};
  await writeAdapter(opts.outDir, layout.config, layout.modules, {
    force: opts.force, configOverrides: headOverrides, ...(record ? { record } : {}), format: record?.format === "compact" ? "compact" : "peft",
    ...(head ? { head: [...head.values()].map((h) => ({ name: headAdapterKey(h.name), shape: h.shape, data: h.data })) } : {}),
  });
  // The default checkpoint beside the output only serves to finish this run; once the adapter is written it goes.
  // A checkpoint folder the caller named is theirs and stays.
  if (!opts.checkpointDir && fs.existsSync(checkpointDir)) {
    removeDirAtomic(checkpointDir);
    ctx.log?.info(`removed the finished run's checkpoint ${checkpointDir}`);
  }
  if (opts.logFile) appendJsonl(opts.logFile, { event: "done", adapter: path.resolve(opts.outDir), steps: totalSteps });
  return {
    adapterDir: opts.outDir, device: session ? session.device : `${device} (streamed)`, steps: totalSteps, losses,
    finalLoss: losses.length ? losses[losses.length - 1]!.loss : NaN,
    trainableParams: countLoraParams(layout.modules), headParams: head ? headParamCount(head) : 0, seconds: (Date.now() - started) / 1000,
    ...(finalEvalLoss !== undefined ? { finalEvalLoss } : {}),
  };
}

/**
 * Throws NUMERICAL when an update left a NaN or Inf in the LoRA values or the head: a learning rate so large that
 * the step overflows float32, or moments from a damaged checkpoint. Checked after every step, before anything is saved.
 */
function assertFiniteValues(params: Map<string, LoraParam>, head: Map<string, HeadParam> | undefined, step: number, lr: number, dataPath: string): void {
  const tensors = [...params.values()].flatMap((p) => [{ name: `${p.name}.A`, data: p.A }, { name: `${p.name}.B`, data: p.B }])
    .concat([...(head?.values() ?? [])].map((h) => ({ name: headKey(h.name), data: h.data })));
  for (const t of tensors) {
    const i = t.data.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) {
      throw new LoraDropError("NUMERICAL", `step ${step}: the update made ${t.name}[${i}] ${t.data[i]} (learning rate ${lr}); nothing was saved from this step: lower the learning rate`, dataPath, "step");
    }
  }
}

/** Mean causal-LM loss of an adapter (or the bare model when loras is empty) on examples, no gradients. */
export async function evaluateLoss(modelDir: string, loras: LoraModule[], examples: TokenizedExample[], opts: { device?: DeviceChoice; batchSize?: number; threads?: number; adapter?: Adapter } = {}): Promise<number> {
  // A sequence classifier is scored through the head its adapter saved (modules_to_save), when it saved one.
  const base = loadHfModel(modelDir);
  const model = opts.adapter && isEncoder(base.config.architecture) ? withAdapterHead(base, opts.adapter) : base;
  const session = await LossSession.create(model, loras.map(slotOf), { gradients: false, dropout: false, device: opts.device ?? "auto", threads: opts.threads });
  try {
    return await meanLoss({ countTargets: (b) => session.countTargets(b), run: (bs, den, params) => runEach(session, bs, den, params) }, examples, paramsOf(loras), opts.batchSize ?? 8, {});
  } finally {
    await session.dispose();
  }
}

/** Dropout masks for every LoRA module input of a batch: 0 with probability p, else 1/(1-p) (as torch's Dropout). */
function dropoutMasks(session: LossSession, batch: Batch, p: number, rng: Rng): Map<string, Float32Array> {
  const n = batch.batch * batch.seq;
  const keep = 1 / (1 - p);
  const masks = new Map<string, Float32Array>();
  for (const d of session.graph.forward.dropoutInputs) {
    const m = new Float32Array(n * d.inFeatures);
    for (let i = 0; i < m.length; i++) m[i] = rng.next() < p ? 0 : keep;
    masks.set(d.name, m);
  }
  return masks;
}

function addInto(acc: Map<string, ParamGrads>, more: Map<string, ParamGrads>): Map<string, ParamGrads> {
  for (const [k, g] of more) {
    const a = acc.get(k)!;
    for (let i = 0; i < a.A.length; i++) a.A[i] = a.A[i]! + g.A[i]!;
    for (let i = 0; i < a.B.length; i++) a.B[i] = a.B[i]! + g.B[i]!;
  }
  return acc;
}

/** The loss and gradients of a step: the whole graph (micro-batch by micro-batch) or the streamed blocks. */
interface LossEngine {
  countTargets(batch: Batch): number;
  run(batches: Batch[], denominator: number, params: Map<string, LoraParam>): Promise<{ loss: number; grads: Map<string, ParamGrads> }>;
}

function addHeadInto(acc: Map<string, Float32Array>, more: Map<string, Float32Array>): Map<string, Float32Array> {
  for (const [k, g] of more) {
    const a = acc.get(k)!;
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + g[i]!;
  }
  return acc;
}

/**
 * The classification head a run trains (sequence classifiers, unless `trainHead` is false), with its starting
 * values; undefined when none is trained. A frozen head must exist: a bare encoder has none to freeze.
 */
function classifierHeadToTrain(model: HfModel, opts: TrainOptions, s: TrainSettings, log?: RunContext["log"]): Map<string, HeadParam> | undefined {
  if (model.config.head !== "seq-cls") return undefined;
  if (opts.trainHead === false) {
    const missing = headTensorShapes(model).find((t) => !model.weights.has(t.name));
    if (missing) throw new LoraDropError("INVALID_ARGUMENT", `the classification head cannot stay frozen: the model has no ${missing.name} (a bare encoder); let it train`, opts.modelDir, "trainHead");
    return undefined;
  }
  const head = initialHead(model, new Rng(s.seed + 3_000_017));
  const from = headTensorShapes(model).every((t) => model.weights.has(t.name)) ? "from the model's classifier" : "initialised as Hugging Face does (no classifier in the model)";
  log?.info(`training the classification head too (modules_to_save: ${[...head.keys()].join(", ")}; ${headParamCount(head)} values, ${from})`);
  return head;
}

/** The whole graph's loss and gradients summed over micro-batches, without dropout. */
async function runEach(session: LossSession, batches: Batch[], denominator: number, params: Map<string, LoraParam>, head?: Map<string, HeadParam>): Promise<{ loss: number; grads: Map<string, ParamGrads> }> {
  let loss = 0;
  let grads: Map<string, ParamGrads> | undefined;
  for (const b of batches) {
    const r = await session.run(b, denominator, params, undefined, head);
    loss += r.loss;
    if (r.grads) grads = grads ? addInto(grads, r.grads) : r.grads;
  }
  return { loss, grads: grads ?? new Map() };
}

/**
 * How a training run fits its memory budget: streamed (layers per block, prefetching within the budget) when the
 * float32 weights do not fit, else the whole graph — recomputing the MLP up projections (ForwardOptions.recomputeUp,
 * about 9 % more time for a quarter less activation memory) when the weights fit but the weights and one step's
 * saved activations do not (wholeTrainingActivationBytes). Streaming and the recomputation need the Llama family;
 * streaming also the causal-LM loss and no LoRA dropout: `on` without them is an error, `auto` falls back to the
 * whole graph with a log line.
 */
function trainingMemoryPlan(model: HfModel, opts: TrainOptions, device: DeviceChoice, s: TrainSettings, examples: TokenizedExample[], dropoutP: number, log?: RunContext["log"]): { stream?: StreamPlan; recomputeUp: boolean } {
  const cfg = model.config;
  const budget = opts.memoryBudget ?? defaultMemoryBudget(device);
  // Batches are padded to their longest example, already cut to max length.
  const seq = Math.max(1, ...examples.map((e) => e.ids.length));
  // One step's micro-batches are streamed together: their hidden states are all carried between blocks.
  const shape = { batch: s.batchSize, seq, totalTokens: s.batchSize * s.gradAccum * seq, layers: cfg.numLayers };
  const stream = streamedTrainingPlan(cfg, opts.stream ?? "auto", shape, budget, opts.modelDir, dropoutP, log);
  if (stream || !isLlamaFamily(cfg.architecture)) return { stream, recomputeUp: false };
  // The whole graph runs one micro-batch at a time.
  const micro = { ...shape, totalTokens: s.batchSize * seq };
  const weights = planStreaming(cfg, micro, Infinity, "off").needed;
  const keep = weights + wholeTrainingActivationBytes(cfg, micro, false);
  if (keep <= budget) return { recomputeUp: false };
  log?.info(`a training step keeping every activation needs ~${formatBytes(keep)} of the ${formatBytes(budget)} memory budget: ` +
    `recomputing the MLP up projections in the backward pass (~${formatBytes(weights + wholeTrainingActivationBytes(cfg, micro, true))}, about 9 % slower)`);
  return { recomputeUp: true };
}

/** The streaming plan for a run of `shape` (see trainingMemoryPlan), or undefined for the whole graph. */
function streamedTrainingPlan(cfg: ModelConfig, choice: StreamChoice, shape: RunShape, budget: number, modelDir: string, dropoutP: number, log?: RunContext["log"]): StreamPlan | undefined {
  if (choice === "off") return undefined;
  const arch = cfg.architecture;
  const why = !(STREAMED_ARCHITECTURES as readonly string[]).includes(arch) ? `layer streaming supports ${STREAMED_ARCHITECTURES.join(", ")} models, not ${arch}`
    : cfg.head === "seq-cls" ? "layer streaming computes the causal-LM loss only, not a classification loss"
      : dropoutP > 0 ? `layer streaming does not apply LoRA dropout (lora_dropout is ${dropoutP}); set it to 0`
        : undefined;
  if (why) {
    if (choice === "on") throw new LoraDropError("INVALID_ARGUMENT", why, modelDir, "stream");
    // Too small a budget even for one streamed layer (MEMORY_BUDGET) is no reason to stop: the whole graph runs anyway.
    let wanted = true;
    try { wanted = planStreaming(cfg, shape, budget, "auto", trainingExtraBytes(cfg, shape)).stream; } catch { /* wanted stays true */ }
    if (!wanted) return undefined;
    log?.info(`the model does not fit the memory budget of ${formatBytes(budget)}, but ${why}: training with the whole graph`);
    return undefined;
  }
  const plan = planStreaming(cfg, shape, budget, choice, trainingExtraBytes(cfg, shape));
  log?.info(describePlan(plan));
  return plan.stream ? plan : undefined;
}

/** Mean loss over all target tokens of `examples`, with no dropout. */
async function meanLoss(engine: LossEngine, examples: TokenizedExample[], params: Map<string, LoraParam>, batchSize: number, ctx: RunContext): Promise<number> {
  const groups = batchesOf(examples, batchSize).map((g) => makeBatch(g));
  const total = groups.reduce((a, b) => a + engine.countTargets(b), 0);
  if (total === 0) throw new LoraDropError("DATASET_EMPTY", "no example has a token to predict");
  let loss = 0;
  for (const b of groups) {
    throwIfCancelled(ctx.signal, "evaluation");
    if (engine.countTargets(b) > 0) loss += (await engine.run([b], total, params)).loss;
  }
  return loss;
}
