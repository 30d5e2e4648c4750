/**
 * What the worker process does for each job kind: calls the engine and returns a small result. Runs inside the
 * worker (never in the extension host), and is callable in-process by tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../core/profile";
import { writeProfile } from "../core/profileFile";
import type { RunContext } from "../core/progress";
import type { DeviceChoice } from "../core/session";
import { pruneAdapter } from "../core/prune";
import { layersFor } from "../core/dropRecord";
import { trainLora } from "../core/train/train";
import { PIPELINE_FILES, PIPELINE_PHASES, runPipeline } from "../core/pipeline";
import { LoraDropError } from "../core/errors";
import { formatBytes } from "../core/stream/memoryBudget";
import { phasedProgress } from "./progressText";
import { jobProblem } from "./jobValidation";
import type { Job, JobResults, PipelineJob, ProfileJob, PruneJob, TrainJob, TrainStep } from "./jobProtocol";

/** The context a job gets: the engine's RunContext plus a per-step callback for training. */
export type JobContext = RunContext & { onStep?: (step: TrainStep) => void };

/** Runs one job in this process; a job whose fields have the wrong types fails with INVALID_ARGUMENT naming the field. */
export async function runJobInProcess<J extends Job>(job: J, ctx: JobContext): Promise<JobResults[J["kind"]]> {
  const problem = jobProblem(job);
  if (problem) throw new LoraDropError("INVALID_ARGUMENT", `invalid ${String((job as { kind?: unknown })?.kind)} job: ${problem.message}`, undefined, problem.field);
  switch (job.kind) {
    case "profile":
      return (await runProfile(job, ctx)) as JobResults[J["kind"]];
    case "prune":
      return (await runPrune(job, ctx)) as JobResults[J["kind"]];
    case "train":
      return (await runTrain(job, ctx)) as JobResults[J["kind"]];
    case "pipeline":
      return (await runPipelineJob(job, ctx)) as JobResults[J["kind"]];
    default:
      throw new Error(`unknown job ${(job as Job).kind}`);
  }
}

async function runProfile(job: ProfileJob, ctx: JobContext): Promise<JobResults["profile"]> {
  const profile = await profileAdapter(
    { modelDir: job.modelDir, adapterDir: job.adapterDir, dataPath: job.dataPath, maxExamples: job.maxExamples, maxTokens: job.maxTokens, device: job.device as DeviceChoice,
      memoryBudget: job.memoryBudget, stream: job.stream,
      // The budget behind the decision, in the log as the CLI prints it.
      onPlan: (plan) => ctx.log?.info(plan.stream
        ? `streaming: ${plan.layersPerBlock} layer(s) per block, ~${formatBytes(plan.needed)} of a ${formatBytes(plan.budget)} budget`
        : `not streaming: the model needs ~${formatBytes(plan.needed)} of a ${formatBytes(plan.budget)} budget`) },
    ctx,
  );
  fs.mkdirSync(path.dirname(job.outFile), { recursive: true });
  writeProfile(job.outFile, profile);
  ctx.log?.info(`wrote ${job.outFile}`);
  return {
    profilePath: job.outFile,
    device: profile.device,
    layers: profile.layers.length,
    sequences: profile.sequences.length,
    tokens: profile.timing.tokens,
    seconds: profile.timing.seconds,
    tokensPerSecond: profile.timing.tokens_per_second,
    peakRssBytes: profile.timing.peak_rss_bytes,
  };
}

async function runPrune(job: PruneJob, ctx: JobContext): Promise<JobResults["prune"]> {
  const r = await pruneAdapter(
    { adapterDir: job.adapterDir, profile: job.profilePath, outDir: job.outDir, threshold: job.threshold, mode: job.mode, format: job.format, force: job.force },
    ctx,
  );
  ctx.log?.info(`wrote ${r.outDir}: ${r.paramsBefore} → ${r.paramsAfter} LoRA parameters`);
  // Per-layer selection (the extension does not offer per-module): one list for every module.
  return {
    outDir: r.outDir,
    threshold: job.threshold,
    mode: job.mode,
    keptLayers: layersFor(r.selection.kept, ""),
    sharedLayers: layersFor(r.selection.shared, ""),
    paramsBefore: r.paramsBefore,
    paramsAfter: r.paramsAfter,
  };
}

async function runTrain(job: TrainJob, ctx: JobContext): Promise<JobResults["train"]> {
  const r = await trainLora(
    {
      modelDir: job.modelDir, dataPath: job.dataPath, outDir: job.outDir, initAdapterDir: job.adapterDir,
      r: job.r, alpha: job.alpha, targets: job.targets, epochs: job.epochs, lr: job.lr, batchSize: job.batchSize,
      maxLength: job.maxTokens, device: job.device as DeviceChoice, logFile: job.logFile, force: job.force,
      memoryBudget: job.memoryBudget, stream: job.stream,
    },
    { ...ctx, onStep: (e) => ctx.onStep?.({ step: e.step, totalSteps: e.totalSteps, loss: e.loss, lr: e.lr, tokensPerSecond: e.tokensPerSecond }) },
  );
  return { outDir: r.adapterDir, device: r.device, steps: r.steps, finalLoss: r.finalLoss, trainableParams: r.trainableParams, seconds: r.seconds };
}

async function runPipelineJob(job: PipelineJob, ctx: JobContext): Promise<JobResults["pipeline"]> {
  // The engine reports progress per phase; the notification shows the whole run, each phase an equal slice.
  let phase = 0;
  let phaseName = "";
  const report = await runPipeline(
    {
      modelDir: job.modelDir, dataPath: job.dataPath, outDir: job.outDir, alpha: job.sampleFraction, threshold: job.threshold,
      r: job.r, loraAlpha: job.alpha, targets: job.targets, lr: job.lr, batchSize: job.batchSize, maxLength: job.maxTokens,
      device: job.device as DeviceChoice, force: job.force, memoryBudget: job.memoryBudget, stream: job.stream,
    },
    {
      signal: ctx.signal,
      log: ctx.log,
      progress: { report: (u) => ctx.progress?.report(phasedProgress(phase, PIPELINE_PHASES.length, u, phaseName)) },
      onEvent: (e) => {
        if (e.step !== undefined && e.totalSteps !== undefined && e.loss !== undefined) {
          ctx.onStep?.({ step: e.step, totalSteps: e.totalSteps, loss: e.loss, lr: e.lr ?? 0, tokensPerSecond: 0 });
          return;
        }
        phase = Math.max(0, PIPELINE_PHASES.indexOf(e.phase));
        phaseName = e.phase;
        if (e.message) ctx.log?.info(`pipeline ${e.phase}: ${e.message}`);
        ctx.progress?.report(phasedProgress(phase, PIPELINE_PHASES.length, { step: 0, total: 1 }, e.message ?? e.phase));
      },
    },
  );
  const out = report.out;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const loss = (x: number | null | undefined) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(4) : "n/a");
  const summary = `LoRA-drop kept ${JSON.stringify(report.selection.kept)}, ${report.params.lora_drop.toLocaleString("en-US")} of ${report.params.lora.toLocaleString("en-US")} LoRA parameters (${pct(report.params.reduction)} fewer); ` +
    `held-out loss LoRA-drop ${loss(report.lora_drop.eval_loss)}${report.lora ? `, LoRA ${loss(report.lora.eval_loss)}` : ""}.`;
  return {
    outDir: out,
    profilePath: path.join(out, PIPELINE_FILES.profile),
    reportPath: path.join(out, PIPELINE_FILES.report_md),
    adapterDir: path.join(out, PIPELINE_FILES.adapter),
    summary,
  };
}
