/**
 * LoRA-drop from start to finish (paper, arXiv 2402.07721, §3):
 *  1. a seeded stratified sample of a fraction α of the training data;
 *  2. a short LoRA training on the sample;
 *  3. the output profile of that LoRA on the sample (profile.json);
 *  4. the selection of kept and shared layers with threshold T;
 *  5. a fresh fine-tune on the whole training split with the kept + shared structure (one LoRA per module for all
 *     shared layers, trained jointly), and — for the comparison — a full LoRA with the same steps, data and order;
 *  6. the final adapter, the profile and a report (JSON + Markdown).
 * A held-out split (stratified like the sample) gives the evaluation loss. The output folder is written
 * atomically: it appears complete, or not at all. Every training, the profile and the evaluation run on the chosen
 * engine. On a node other than node 0 of a multi-node torch run, the pipeline takes part in every training and
 * goes through the same phases in a temporary folder (it needs the sample LoRA's profile to train the same
 * structure), writes nothing and skips the evaluation: node 0 writes the output.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import { loadHfModel } from "../models/hfModel";
import { loadAdapter } from "../adapter/peftAdapter";
import { readDataset } from "../data/dataset";
import { profileAdapter } from "../importance/profile";
import { writeProfile } from "../importance/profileFile";
import { writeDirAtomic, writeFileAtomic } from "../io/atomicWrite";
import { checkRunPaths } from "../io/outputGuard";
import { strataOf, stratifiedSample, holdOut } from "../data/sample";
import { selectFromProfile, dropShareRecord } from "../prune/dropShare";
import { SelectionRule } from "../importance/selection";
import { trainLora, TrainEvent, TrainResult } from "../train/train";
import { checkThreads } from "../runtime/session";
import type { StreamChoice } from "../stream/memoryBudget";
import { RunContext } from "../util/progress";
import { PipelineReport, RunSummary, REPORT_SCHEMA, REPORT_VERSION, meanLastLoss, renderMarkdown, EvalMetrics } from "./report";
import { countLoraParams } from "../adapter/loraModule";
import { tokenizeFor } from "../data/examples";
import { TrainOptions } from "../train/settings";
import { checkEngineOptions, type EngineOptions } from "../torch/engineOptions";
import type { EngineDevice } from "../torch/engineChoice";
import { nodeRankOf, type TorchLaunch } from "../torch/launcher";
import { withWorkDir } from "../torch/engineProcess";
import { scoreHeldOut } from "./heldOut";

/**
 * What to run, on either engine (the engine's own fields: EngineOptions). Defaults: α 0.1, T 0.9, 10% held out,
 * 64 profiled examples, the trainer's defaults otherwise.
 */
export interface PipelineOptions extends EngineOptions {
  modelDir: string;
  dataPath: string;
  outDir: string;
  /** Fraction α of the training data sampled for the short run and the profile, in (0, 1]. */
  sampleFraction?: number;
  threshold?: number;
  /** Keep this many layers instead of using a threshold. */
  keep?: number;
  perModule?: boolean;
  /** Stratify by this field of the JSONL records (default: `label` for sequence classifiers, else by token length). */
  stratifyBy?: string;
  /** Fraction held out for evaluation (0: none). */
  evalFraction?: number;
  r?: number;
  loraAlpha?: number;
  targets?: string[];
  /** Optimiser steps of each final fine-tune (default: one epoch of the training split). */
  steps?: number;
  /** Optimiser steps of the short run on the sample (default: one epoch of the sample). */
  sampleSteps?: number;
  lr?: number;
  batchSize?: number;
  maxTokens?: number;
  warmupSteps?: number;
  seed?: number;
  /** Where the models run (`auto`: the engine picks); each engine has its own devices (DEVICES_OF). */
  device?: EngineDevice;
  threads?: number;
  /** torch: how every training's processes are started (the profile and the evaluation run in one process). */
  launch?: TorchLaunch;
  /** Sampled examples profiled at most (the profile stores every token's norms). */
  profileExamples?: number;
  /** Also train a full LoRA with the same steps for the comparison (default true). */
  compare?: boolean;
  /** onnx: bytes a streamed run may use, passed to every training and the profile (default: the engine's automatic budget). */
  memoryBudget?: number;
  /** onnx: layer streaming of every training and the profile (default `auto`). */
  stream?: StreamChoice;
  force?: boolean;
}

/** The phases, in order. */
export const PIPELINE_PHASES = ["sample", "train-sample", "profile", "select", "train-lora-drop", "train-lora", "evaluate", "report"] as const;
/** One phase of the pipeline. */
export type PipelinePhase = (typeof PIPELINE_PHASES)[number];

/**
 * A pipeline event: a phase starting (with a message) or a training step within it (step, loss). Progress within
 * a phase goes to the RunContext's `progress`, whose updates belong to the phase last announced here.
 */
export interface PipelineEvent {
  phase: PipelinePhase;
  message?: string;
  step?: number;
  totalSteps?: number;
  loss?: number;
  lr?: number;
}

/** Names of the files and folders inside the output folder. */
export const PIPELINE_FILES = {
  adapter: "adapter", lora_adapter: "lora-adapter", sample_adapter: "sample-adapter",
  profile: "profile.json", sample: "sample.jsonl", report_json: "report.json", report_md: "report.md",
} as const;

/** The callbacks of a pipeline run. */
export type PipelineContext = RunContext & { onEvent?: (e: PipelineEvent) => void };

/** Runs the whole pipeline; returns the report (also written to the output folder). One node, or node 0 of several. */
export async function runPipeline(opts: PipelineOptions, ctx: PipelineContext = {}): Promise<PipelineReport> {
  const r = await runPipelineOnNode(opts, ctx);
  if (isNodeOutcome(r)) throw new LoraDropError("INVALID_ARGUMENT", `node ${r.nodeRank} of a multi-node run writes no report; run it through runPipelineOnNode`, undefined, "launch");
  return r;
}

/** runPipeline on any node of a multi-node run: node 0 returns the report; the others what they did (NodeOutcome). */
export async function runPipelineOnNode(opts: PipelineOptions, ctx: PipelineContext = {}): Promise<PipelineReport | NodeOutcome> {
  const started = Date.now();
  const engine = checkEngineOptions(opts);
  // Only node 0 of a multi-node run writes; the other nodes run the phases in a folder of their own, then drop it.
  const writes = nodeRankOf(opts.launch) === 0;
  const alpha = opts.sampleFraction ?? 0.1;
  const rule: SelectionRule = opts.keep !== undefined ? { keep: opts.keep } : { threshold: opts.threshold ?? 0.9 };
  const seed = opts.seed ?? 42;
  const compare = opts.compare ?? true;
  if (!(alpha > 0 && alpha <= 1)) throw new LoraDropError("INVALID_ARGUMENT", `the sample fraction α must be in (0, 1], got ${alpha}`, undefined, "sampleFraction");
  if (rule.threshold !== undefined && !(rule.threshold > 0 && rule.threshold <= 1)) throw new LoraDropError("INVALID_ARGUMENT", `threshold must be in (0, 1], got ${rule.threshold}`, undefined, "threshold");
  const evalFraction = opts.evalFraction ?? 0.1;
  if (!(evalFraction >= 0 && evalFraction <= 0.5)) throw new LoraDropError("INVALID_ARGUMENT", `the held-out fraction must be in [0, 0.5], got ${evalFraction}`, undefined, "evalFraction");
  checkRunPaths([
    { path: opts.modelDir, role: "the model folder", option: "--model" },
    { path: opts.dataPath, role: "the dataset", option: "--data" },
  ], [{ path: opts.outDir, role: "the output folder", option: "--out" }]);
  checkThreads(opts.threads);
  if (writes && fs.existsSync(opts.outDir) && !opts.force) throw new LoraDropError("OUTPUT_EXISTS", "the output folder already exists; choose another or pass --force", opts.outDir);
  const emit = (e: PipelineEvent) => ctx.onEvent?.(e);
  const outAbs = path.resolve(opts.outDir);

  // 1. Split and sample.
  emit({ phase: "sample", message: `sampling ${alpha} of ${opts.dataPath}` });
  const model = loadHfModel(opts.modelDir);
  const maxTokens = opts.maxTokens ?? 512;
  const raw = readDataset(opts.dataPath);
  const tokenized = tokenizeFor(model, opts.dataPath, raw, maxTokens);
  const lengths = tokenized.map((e) => e.ids.length);
  // Sequence classifiers are stratified by their label unless told otherwise (so every class is sampled and held out).
  const stratifyBy = opts.stratifyBy ?? (model.config.head === "seq-cls" ? "label" : undefined);
  const { train, eval: held } = holdOut(strataOf(raw, lengths, stratifyBy, undefined, opts.dataPath), evalFraction, seed);
  const trainStrata = strataOf(raw, lengths, stratifyBy, train, opts.dataPath);
  const sample = stratifiedSample(trainStrata, alpha, seed);
  const evalExamples = held.map((i) => tokenized[i]!).filter((e) => e.lossMask.some((m, t) => m && t > 0));
  ctx.log?.info(`${raw.length} examples: ${train.length} training, ${held.length} held out, ${sample.indices.length} sampled from ${trainStrata.length} strata`);

  const engineOpts: EngineOptions & Pick<TrainOptions, "device" | "threads" | "memoryBudget" | "stream"> = {
    engine, device: opts.device, threads: opts.threads, memoryBudget: opts.memoryBudget, stream: opts.stream,
    ...(engine === "torch" ? { python: opts.python, dtype: opts.dtype, graceMs: opts.graceMs, env: opts.env } : {}),
  };
  const common: Omit<TrainOptions, "outDir"> = {
    ...engineOpts, modelDir: opts.modelDir, dataPath: opts.dataPath, r: opts.r, loraAlpha: opts.loraAlpha, targets: opts.targets, lr: opts.lr,
    batchSize: opts.batchSize, maxTokens, warmupSteps: opts.warmupSteps, seed, ...(opts.launch ? { launch: opts.launch, everyNodeWrites: true } : {}),
  };
  const train_ = async (phase: PipelinePhase, o: TrainOptions): Promise<TrainResult> => {
    throwIfCancelled(ctx.signal, "pipeline");
    emit({ phase, message: `training ${path.basename(o.outDir)}` });
    return trainLora(o, {
      signal: ctx.signal, log: ctx.log, progress: ctx.progress,
      onStep: (e: TrainEvent) => emit({ phase, step: e.step, totalSteps: e.totalSteps, loss: e.loss, lr: e.lr }),
    });
  };

  let report: PipelineReport | undefined;
  const phases = async (tmp: string) => {
    const at = (name: string) => path.join(tmp, name);
    writeFileAtomic(at(PIPELINE_FILES.sample), sample.indices.map((i) => JSON.stringify(raw[i]!.fields)).join("\n") + "\n");

    // 2. Short LoRA run on the sample.
    const sampleRun = await train_("train-sample", { ...common, exampleIndices: sample.indices, steps: opts.sampleSteps, outDir: at(PIPELINE_FILES.sample_adapter) });

    // 3. Output profile of that LoRA on the sample.
    throwIfCancelled(ctx.signal, "pipeline");
    emit({ phase: "profile", message: "profiling the sample LoRA" });
    const profile = await profileAdapter({
      ...engineOpts, modelDir: opts.modelDir, adapterDir: at(PIPELINE_FILES.sample_adapter), dataPath: at(PIPELINE_FILES.sample),
      maxExamples: Math.min(sample.indices.length, opts.profileExamples ?? 64), maxTokens,
    }, { signal: ctx.signal, log: ctx.log, progress: ctx.progress });
    // Paths as they will be once the folder is in place, not the temporary folder's.
    profile.adapter.path = path.join(outAbs, PIPELINE_FILES.sample_adapter);
    profile.settings.data = path.join(outAbs, PIPELINE_FILES.sample);
    writeProfile(at(PIPELINE_FILES.profile), profile);

    // 4. Selection.
    emit({ phase: "select", message: rule.threshold !== undefined ? `threshold ${rule.threshold}` : `keep ${rule.keep}` });
    const sampleAdapter = loadAdapter(at(PIPELINE_FILES.sample_adapter), model.config);
    const selection = selectFromProfile(profile, sampleAdapter, rule, opts.perModule ?? false, PIPELINE_FILES.profile);
    const record = dropShareRecord(selection, "share", "peft", null, "fresh");

    // 5. The LoRA-drop fine-tune (fresh, kept + shared structure) and the full LoRA it is compared with.
    const dropRun = await train_("train-lora-drop", {
      ...common, exampleIndices: train, steps: opts.steps, outDir: at(PIPELINE_FILES.adapter), finalEval: true,
      sharedLayers: selection.shared, loraDrop: record,
    });
    const loraRun = compare ? await train_("train-lora", { ...common, exampleIndices: train, steps: opts.steps, outDir: at(PIPELINE_FILES.lora_adapter), finalEval: true }) : undefined;

    // The other nodes of a multi-node run took part in the trainings; scoring and the report are node 0's.
    if (!writes) return;
    // Held-out losses: both adapters as written (loaded back, so the shared binding is the one a user gets).
    throwIfCancelled(ctx.signal, "pipeline");
    emit({ phase: "evaluate", message: `held-out loss on ${evalExamples.length} examples` });
    const dropAdapter = loadAdapter(at(PIPELINE_FILES.adapter), model.config);
    const loraAdapter = loraRun ? loadAdapter(at(PIPELINE_FILES.lora_adapter), model.config) : undefined;
    const [drop, lora, base] = await scoreHeldOut(model, [dropAdapter, loraAdapter, undefined], evalExamples,
      { ...engineOpts, modelDir: opts.modelDir, batchSize: opts.batchSize }, { signal: ctx.signal, log: ctx.log, progress: ctx.progress });
    const [dropEval, dropMetrics] = [drop!.loss, drop!.metrics];
    const [loraEval, loraMetrics] = loraAdapter ? [lora!.loss, lora!.metrics] : [null, null];
    const [baseEval, baseMetrics] = [base!.loss, base!.metrics];

    // 6. Report.
    emit({ phase: "report", message: "writing the report" });
    const summary = (run: TrainResult, dir: string, evalLoss: number | null, metrics?: EvalMetrics | null): RunSummary => ({
      adapter: dir, steps: run.steps, trainable_params: run.trainableParams, losses: run.losses, final_loss: run.finalLoss,
      mean_last_loss: meanLastLoss(run.losses), train_loss: run.finalEvalLoss ?? null, eval_loss: evalLoss, seconds: run.seconds,
      ...(metrics ? { eval_metrics: metrics } : {}),
    });
    const fullParams = countLoraParams(sampleAdapter.loras);
    const files: Record<string, string> = {};
    for (const [k, v] of Object.entries(PIPELINE_FILES)) if (k !== "lora_adapter" || compare) files[k] = path.join(outAbs, v);
    const sampledPerStratum = new Map(trainStrata.map((s, i) => [s.key, sample.taken[i]!]));
    report = {
      schema: REPORT_SCHEMA, version: REPORT_VERSION, created: new Date().toISOString(), device: dropRun.device, out: outAbs,
      settings: {
        model: path.resolve(opts.modelDir), data: path.resolve(opts.dataPath), alpha, threshold: rule.threshold ?? null, keep: rule.keep ?? null,
        per_module: opts.perModule ?? false, stratify_by: stratifyBy ?? null, eval_fraction: evalFraction, r: opts.r ?? null,
        lora_alpha: opts.loraAlpha ?? null, targets: opts.targets ?? null, steps: dropRun.steps, sample_steps: sampleRun.steps, lr: opts.lr ?? null,
        batch_size: opts.batchSize ?? null, max_length: maxTokens, warmup_steps: opts.warmupSteps ?? null, seed, profile_examples: profile.sequences.length,
      },
      data: {
        file: path.resolve(opts.dataPath), examples: raw.length, train: train.length, eval: evalExamples.length, sample: sample.indices.length,
        stratify_by: stratifyBy ?? null,
        strata: trainStrata.map((s) => ({ key: s.key, train: s.indices.length, sample: sampledPerStratum.get(s.key) ?? 0 })),
        eval_indices: evalExamples.map((e) => e.example),
      },
      sample_run: summary(sampleRun, PIPELINE_FILES.sample_adapter, null),
      profile: { file: PIPELINE_FILES.profile, criterion: profile.criterion, sequences: profile.sequences.length, tokens: profile.timing.tokens },
      importance: { layers: profile.layers, per_layer: profile.importance.per_layer, per_module: profile.importance.per_module },
      selection: { per_module: selection.perModule, kept: selection.kept, shared: selection.shared, coverage: selection.coverage, threshold: rule.threshold ?? null, keep: rule.keep ?? null },
      params: { lora: fullParams, lora_drop: dropRun.trainableParams, reduction: fullParams > 0 ? 1 - dropRun.trainableParams / fullParams : 0 },
      lora_drop: summary(dropRun, PIPELINE_FILES.adapter, dropEval, dropMetrics),
      lora: loraRun ? summary(loraRun, PIPELINE_FILES.lora_adapter, loraEval, loraMetrics) : null,
      base_eval_loss: baseEval,
      ...(baseMetrics ? { base_eval_metrics: baseMetrics } : {}),
      files,
      seconds: (Date.now() - started) / 1000,
    };
    writeFileAtomic(at(PIPELINE_FILES.report_json), JSON.stringify(report, null, 2) + "\n");
    writeFileAtomic(at(PIPELINE_FILES.report_md), renderMarkdown(report));
  };
  if (!writes) {
    await withWorkDir(phases);
    return { written: false, nodeRank: nodeRankOf(opts.launch), out: outAbs, seconds: (Date.now() - started) / 1000 };
  }
  await writeDirAtomic(opts.outDir, phases, opts.force);
  return report!;
}

/** What a node other than node 0 of a multi-node run ends with: it took part in the trainings; node 0 wrote `out`. */
export interface NodeOutcome { written: false; nodeRank: number; out: string; seconds: number }

/** True for the outcome of a node that wrote nothing. */
export function isNodeOutcome(r: PipelineReport | NodeOutcome): r is NodeOutcome {
  return (r as NodeOutcome).written === false;
}
