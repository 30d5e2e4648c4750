/**
 * What the worker process does for each job kind: calls the engine and returns a small result. Runs inside the
 * worker (never in the extension host), and is callable in-process by tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { profileToFile } from "../core/importance/profile";
import { phasedProgress, type RunContext } from "../core/util/progress";
import { pruneAdapter } from "../core/prune/prune";
import { layersFor } from "../core/adapter/dropRecord";
import { trainLora } from "../core/train/train";
import { runSweep } from "../core/sweep/sweep";
import { checkSweepOutput, writeSweep } from "../core/sweep/sweepFile";
import { PIPELINE_FILES, PIPELINE_PHASES, runPipeline } from "../core/pipeline/pipeline";
import { LoraDropError } from "../core/util/errors";
import { jobProblem } from "./jobValidation";
import { createDemoWorkspace } from "../core/demo/demoWorkspace";
import { profileConclusion } from "../viewModel/profileSummary";
import type { Job, JobResults, PipelineJob, ProfileJob, PruneJob, SweepJob, TrainJob, TrainStep } from "./jobProtocol";

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
    case "sweep":
      return (await runSweepJob(job, ctx)) as JobResults[J["kind"]];
    case "train":
      return (await runTrain(job, ctx)) as JobResults[J["kind"]];
    case "pipeline":
      return (await runPipelineJob(job, ctx)) as JobResults[J["kind"]];
    case "demo":
      return (await createDemoWorkspace(job.dir, ctx)) as JobResults[J["kind"]];
    default:
      throw new Error(`unknown job ${(job as Job).kind}`);
  }
}

async function runProfile(job: ProfileJob, ctx: JobContext): Promise<JobResults["profile"]> {
  const { kind: _, outFile, threshold, ...options } = job;
  // The host picks a fresh name; an existing file there is replaced, but never one of the run's inputs.
  const profile = await profileToFile(options, outFile, true, ctx);
  ctx.log?.info(`wrote ${outFile}`);
  return {
    profilePath: outFile,
    device: profile.device,
    layers: profile.layers.length,
    sequences: profile.sequences.length,
    tokens: profile.timing.tokens,
    seconds: profile.timing.seconds,
    tokensPerSecond: profile.timing.tokens_per_second,
    peakRssBytes: profile.timing.peak_rss_bytes,
    summary: profileConclusion(profile, threshold),
  };
}

async function runPrune(job: PruneJob, ctx: JobContext): Promise<JobResults["prune"]> {
  const { kind: _, profilePath, ...options } = job;
  const r = await pruneAdapter({ ...options, profile: profilePath }, ctx);
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

async function runSweepJob(job: SweepJob, ctx: JobContext): Promise<JobResults["sweep"]> {
  const { kind: _, profilePath, outFile, force, ...options } = job;
  const inputs = { files: [profilePath, options.dataPath], folders: [options.modelDir, options.adapterDir] };
  // Checked before measuring, so a refused output costs nothing.
  checkSweepOutput(outFile, inputs, force);
  const sweep = await runSweep({ ...options, profile: profilePath }, ctx);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  writeSweep(outFile, sweep, inputs, force);
  ctx.log?.info(`wrote ${outFile}`);
  return { sweepPath: outFile, points: sweep.points.length, device: sweep.measured.device, seconds: sweep.measured.seconds };
}

async function runTrain(job: TrainJob, ctx: JobContext): Promise<JobResults["train"]> {
  const { kind: _, ...options } = job;
  const r = await trainLora(
    options,
    { ...ctx, onStep: (e) => ctx.onStep?.({ step: e.step, totalSteps: e.totalSteps, loss: e.loss, lr: e.lr, tokensPerSecond: e.tokensPerSecond }) },
  );
  return { outDir: r.adapterDir, device: r.device, steps: r.steps, finalLoss: r.finalLoss, trainableParams: r.trainableParams, seconds: r.seconds };
}

async function runPipelineJob(job: PipelineJob, ctx: JobContext): Promise<JobResults["pipeline"]> {
  // The engine reports progress per phase; the notification shows the whole run, each phase an equal slice.
  let phase = 0;
  let phaseName = "";
  const { kind: _, ...options } = job;
  const report = await runPipeline(
    options,
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
