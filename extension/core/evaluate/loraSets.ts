/**
 * Scores LoRA configurations of one adapter on the same examples: the loss `train` reports (mean token
 * cross-entropy of the causal LM over the target tokens, or a sequence classifier's class cross-entropy) and, for
 * a classifier, the accuracy. Every (layer, module) LoRA of the adapter's layout is a graph input of its own, so any
 * configuration of that layout — pairs kept as they are, one shared pair fed to several layers, pairs set to zero —
 * runs through the same compiled model: one session (or, streamed, one set of block sessions) serves them all.
 */
import { batchesOf, makeBatch, type Batch } from "../data/batch";
import type { TokenizedExample } from "../data/dataset";
import type { HfModel } from "../models/hfModel";
import type { LoraSlot } from "../models/forward";
import { ownParam, type LoraModule } from "../adapter/loraModule";
import { LossSession, countTargets, type LoraParam } from "../runtime/lossSession";
import type { EngineDevice } from "../torch/engineChoice";
import { checkEngineOptions, onnxDevice, type EngineOptions } from "../torch/engineOptions";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import type { RunContext } from "../util/progress";
import { defaultMemoryBudget, describePlan, planStreaming, STREAMED_ARCHITECTURES, type StreamChoice, type StreamPlan } from "../stream/memoryBudget";
import { streamedLosses } from "../stream/streamLoss";
import { PeakRss } from "../stream/peakMemory";
import { quantizeModel } from "../models/quantizedWeights";
import { checkPrecision, type Precision } from "../quant/precision";

/** The configurations to score, built on demand (a shared pair is computed only when its configuration runs). */
export interface LoraSetSource {
  count: number;
  /** The LoRA modules of configuration `i`; a (layer, module) of the layout that it lacks gets no LoRA. */
  get(i: number): LoraModule[];
}

/** How to run the evaluation. */
export interface EvaluationOptions extends EngineOptions {
  /** A device of the chosen engine (checkEngineOptions). */
  device?: EngineDevice;
  threads?: number;
  /** Sequences per session run (default 8). */
  batchSize?: number;
  /** Bytes a streamed run may use (default: half the available memory). */
  memoryBudget?: number;
  /** Layer streaming (Llama-family causal LMs; `auto`: when the float32 model exceeds the budget). */
  stream?: StreamChoice;
  /** The base model's projections in fp32 (default), int8 or int4 (quant/precision.ts); quantized runs are not streamed. */
  precision?: Precision;
  /** Where quantized weights are cached (default: defaultQuantCacheDir()). */
  quantCacheDir?: string;
  /** Called once the streaming decision is made. */
  onPlan?: (plan: StreamPlan) => void;
  /** Called as each configuration's score is known. */
  onScore?: (index: number, score: SetScore) => void;
}

/** One configuration's score. */
export interface SetScore {
  loss: number;
  /** Share of examples whose predicted class is their label (sequence classifiers only). */
  accuracy?: number;
}

/** Scores and what they were measured on. */
export interface Evaluation {
  scores: SetScore[];
  device: string;
  streamed: boolean;
  examples: number;
  /** Tokens fed to the model per configuration (every example's length). */
  tokens: number;
  /** Loss targets per configuration: predicted tokens, or classified examples. */
  targets: number;
  seconds: number;
  peakRssBytes: number;
  /** Streamed: configurations carried through the blocks together (the weights are read once per such group). */
  configurationsPerPass?: number;
}

/** The graph slots of a layout: one own parameter per (layer, module), whatever the adapter shares. */
export function layoutSlots(layout: readonly LoraModule[]): LoraSlot[] {
  return layout.map((l) => ({ layer: l.layer, module: l.module, param: ownParam(l.layer, l.module), r: l.r, scale: l.scale, inFeatures: l.inFeatures, outFeatures: l.outFeatures }));
}

/**
 * The input values of one configuration: each slot gets the configuration's pair at its (layer, module), or zeros
 * (s·B·A·x is then exactly 0, the base model's output). A pair must fit its slot: same rank, scale and shape.
 */
export function paramsForSet(slots: readonly LoraSlot[], set: readonly LoraModule[], zeros: (n: number) => Float32Array = zeroArrays()): Map<string, LoraParam> {
  const at = new Map(set.map((l) => [`${l.layer}.${l.module}`, l]));
  if (at.size !== set.length) throw new Error("a configuration has two pairs on one module");
  const params = new Map<string, LoraParam>();
  for (const s of slots) {
    const l = at.get(`${s.layer}.${s.module}`);
    at.delete(`${s.layer}.${s.module}`);
    if (l && (l.r !== s.r || l.scale !== s.scale || l.inFeatures !== s.inFeatures || l.outFeatures !== s.outFeatures)) {
      throw new Error(`layer ${s.layer} ${s.module}: the configuration's pair (r=${l.r}, s=${l.scale}) does not fit the adapter's (r=${s.r}, s=${s.scale})`);
    }
    params.set(s.param, { name: s.param, r: s.r, inFeatures: s.inFeatures, outFeatures: s.outFeatures, A: l ? l.A : zeros(s.r * s.inFeatures), B: l ? l.B : zeros(s.outFeatures * s.r) });
  }
  const extra = [...at.keys()][0];
  if (extra) throw new Error(`the configuration has a pair at ${extra}, where the adapter has none`);
  return params;
}

/** A cache of read-only zero arrays by length. */
function zeroArrays(): (n: number) => Float32Array {
  const cache = new Map<number, Float32Array>();
  return (n) => cache.get(n) ?? (cache.set(n, new Float32Array(n)), cache.get(n)!);
}

/**
 * Scores every configuration of `sets` on `examples` with the onnx engine (all of a classifier's examples must carry
 * a label); scoreLoraSets (scoreSets.ts) runs either engine.
 */
export async function evaluateLoraSets(model: HfModel, layout: readonly LoraModule[], sets: LoraSetSource, examples: TokenizedExample[], opts: EvaluationOptions = {}, ctx: RunContext = {}): Promise<Evaluation> {
  const started = Date.now();
  if (checkEngineOptions(opts) === "torch") throw new Error("evaluateLoraSets runs the onnx engine; scoreLoraSets dispatches to the torch engine");
  const cfg = model.config;
  const classification = cfg.head === "seq-cls";
  const batches = batchesOf(examples, opts.batchSize ?? 8).map((g) => makeBatch(g, classification ? cfg.padTokenId ?? 0 : 0));
  const targets = batches.reduce((a, b) => a + countTargets(b, classification), 0);
  if (targets === 0) throw new LoraDropError("DATASET_EMPTY", "no example has a token to predict");
  const tokens = examples.reduce((a, e) => a + e.ids.length, 0);
  const slots = layoutSlots(layout);
  const zeros = zeroArrays();
  const plan = evaluationPlan(model, batches, tokens, sets.count, opts);
  opts.onPlan?.(plan);
  ctx.log?.info(describePlan(plan));
  const peak = new PeakRss().start();
  let scores: SetScore[];
  let device: string;
  let peakRssBytes = 0;
  try {
    if (plan.stream) {
      const params = Array.from({ length: sets.count }, (_, i) => paramsForSet(slots, sets.get(i), zeros));
      const res = await streamedLosses(model, slots, params, batches, targets, {
        device: onnxDevice(opts.device), threads: opts.threads, layersPerBlock: plan.layersPerBlock, prefetch: plan.prefetch, groupSize: plan.groupSize, peak,
        onLoss: (i, loss) => opts.onScore?.(i, { loss }),
      }, ctx);
      scores = res.losses.map((loss) => ({ loss }));
      device = res.device;
    } else {
      ({ scores, device } = await wholeGraphScores(model, slots, sets, batches, targets, zeros, opts, ctx, tokens));
    }
  } finally {
    peakRssBytes = peak.stop();
  }
  const bad = scores.findIndex((s) => !Number.isFinite(s.loss));
  if (bad >= 0) throw new LoraDropError("NUMERICAL", `the loss of configuration ${bad + 1} is ${scores[bad]!.loss}: NaN or Inf in the model, the adapter or a float32 overflow`, model.dir);
  return {
    scores, device, streamed: plan.stream, examples: examples.length, tokens, targets, seconds: (Date.now() - started) / 1000, peakRssBytes,
    ...(plan.stream ? { configurationsPerPass: plan.groupSize } : {}),
  };
}

/** Streaming or not, with how many configurations a streamed pass carries at once. */
function evaluationPlan(model: HfModel, batches: Batch[], tokens: number, count: number, opts: EvaluationOptions): StreamPlan & { groupSize: number } {
  const cfg = model.config;
  const streamable = (STREAMED_ARCHITECTURES as readonly string[]).includes(cfg.architecture) && cfg.head !== "seq-cls";
  if (!streamable && opts.stream === "on") {
    throw new LoraDropError("INVALID_ARGUMENT", `layer streaming evaluates the causal-LM loss of ${STREAMED_ARCHITECTURES.join(", ")} models, not a ${cfg.architecture}${cfg.head === "seq-cls" ? " classifier" : ""}`, model.dir, "stream");
  }
  const budget = opts.memoryBudget ?? defaultMemoryBudget(onnxDevice(opts.device));
  const batch = Math.max(1, ...batches.map((b) => b.batch));
  const seq = Math.max(1, ...batches.map((b) => b.seq));
  const shape = (group: number) => ({ batch, seq, totalTokens: tokens * group, layers: cfg.numLayers });
  const extra = streamedHeadBytes(cfg, batch, seq);
  const first = planStreaming(cfg, shape(1), budget, streamable ? opts.stream ?? "auto" : "off", extra, checkPrecision(opts.precision));
  if (!first.stream) return { ...first, groupSize: count };
  // The most configurations whose hidden states fit beside the block: each one carries all the tokens' states.
  let group = 1;
  let plan = first;
  for (let g = 2; g <= count; g++) {
    try {
      plan = planStreaming(cfg, shape(g), budget, "on", extra);
      group = g;
    } catch {
      break;
    }
  }
  return { ...plan, groupSize: group };
}

/** What a streamed evaluation holds besides the block: the float32 LM head and one batch's logits with their log-softmax. */
export function streamedHeadBytes(cfg: HfModel["config"], batch: number, seq: number): number {
  return 4 * cfg.vocabSize * cfg.hiddenSize + 2 * 4 * batch * seq * cfg.vocabSize;
}

/** The whole graph: one loss session, every configuration batch by batch. */
async function wholeGraphScores(model: HfModel, slots: LoraSlot[], sets: LoraSetSource, batches: Batch[], targets: number, zeros: (n: number) => Float32Array,
  opts: EvaluationOptions, ctx: RunContext, tokens: number): Promise<{ scores: SetScore[]; device: string }> {
  const classification = model.config.head === "seq-cls";
  const numLabels = model.config.numLabels ?? 2;
  if (classification) {
    const unlabelled = batches.flatMap((b) => b.examples).find((e) => e.label === undefined);
    if (unlabelled) throw new LoraDropError("DATASET_INVALID", `example ${unlabelled.example + 1} has no \`label\`: a sequence classifier's loss needs the class of every example`, undefined, "label");
  }
  const quantized = await quantizeModel(model, checkPrecision(opts.precision), { cacheDir: opts.quantCacheDir, signal: ctx.signal, log: ctx.log });
  const session = await LossSession.create(model, slots, { gradients: false, dropout: false, device: onnxDevice(opts.device), threads: opts.threads, classLogits: classification, quantized, log: ctx.log });
  const started = Date.now();
  const scores: SetScore[] = [];
  try {
    for (let i = 0; i < sets.count; i++) {
      const params = paramsForSet(slots, sets.get(i), zeros);
      let loss = 0;
      let correct = 0;
      let done = i * tokens;
      for (const batch of batches) {
        throwIfCancelled(ctx.signal, "evaluation");
        done += batch.examples.reduce((a, e) => a + e.ids.length, 0);
        if (session.countTargets(batch) === 0) continue;
        const r = await session.run(batch, targets, params);
        loss += r.loss;
        if (r.logits) correct += batch.examples.filter((e, b) => argmax(r.logits!, b * numLabels, numLabels) === e.label).length;
        ctx.progress?.report({ step: done, total: sets.count * tokens, message: `configuration ${i + 1}/${sets.count}`, tokensPerSecond: done / Math.max((Date.now() - started) / 1000, 1e-3) });
      }
      const score: SetScore = classification ? { loss, accuracy: correct / targets } : { loss };
      scores.push(score);
      opts.onScore?.(i, score);
    }
  } finally {
    await session.dispose();
  }
  return { scores, device: session.device };
}

/** Index of the largest of `n` values from `offset` (the first one on ties, as torch.argmax). */
function argmax(values: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (values[offset + c]! > values[offset + best]!) best = c;
  return best;
}
