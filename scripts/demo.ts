/**
 * `npm run demo`: LoRA-drop end to end on an embedded tiny model. Generates (deterministically, offline) a random
 * 16-layer Llama with Llama 2's real tokenizer and a synthetic text dataset into ./demo-output, then runs the whole
 * pipeline — stratified sample, short LoRA, output profile, selection at T = 0.9, LoRA-drop fine-tune and a full
 * LoRA with the same steps for comparison — and prints what was found. Then it sweeps the thresholds of the
 * short run's adapter (the one the pipeline profiled and selected from): the loss of the pruned adapter at every T,
 * before any retraining. A few minutes on 2 CPU cores.
 *
 * Options: --out DIR (default ./demo-output), --steps N (default 240), --threads N (default 2).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeTinyModel, writeSyntheticDataset } from "../extension/core/demo/tinyModel";
import { runPipeline, PipelineEvent, PIPELINE_FILES, PIPELINE_PHASES, PipelineOptions } from "../extension/core/pipeline/pipeline";
import { pipelineSummary } from "../extension/cli/pipelineCommand";
import { runSweep } from "../extension/core/sweep/sweep";
import { sweepPathFor, writeSweep } from "../extension/core/sweep/sweepFile";
import { sweepTable } from "../extension/cli/sweepCommand";
import { readProfile } from "../extension/core/importance/profileFile";
import { measuredPointIndex } from "../extension/viewModel/sweepChart";
import { reportError } from "../extension/cli/terminal";
import { EtaClock, etaText } from "../extension/core/util/eta";

/** The demo's settings: small enough for a laptop CPU, large enough for importance to differ between layers. */
export const DEMO = {
  model: { seed: 11, numLayers: 16, hiddenSize: 64, intermediateSize: 128, numHeads: 4, numKvHeads: 2 },
  data: { seed: 12, count: 512 },
  run: {
    sampleFraction: 0.1, threshold: 0.9, stratifyBy: "topic", evalFraction: 0.1, r: 8, loraAlpha: 16,
    targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    steps: 240, sampleSteps: 60, lr: 1e-2, batchSize: 8, maxTokens: 64, warmupSteps: 10, seed: 42, device: "cpu" as const,
  },
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const root = path.resolve(arg("out") ?? "demo-output");
  const modelDir = path.join(root, "model");
  const dataFile = path.join(root, "data.jsonl");
  const outDir = path.join(root, "run");
  const started = Date.now();
  // Only the demo's own generated folders are replaced; nothing else under `root` is touched.
  for (const p of [modelDir, dataFile]) fs.rmSync(p, { recursive: true, force: true });
  writeTinyModel(modelDir, DEMO.model);
  writeSyntheticDataset(dataFile, DEMO.data);
  process.stdout.write(`tiny model (${DEMO.model.numLayers} layers, hidden ${DEMO.model.hiddenSize}, Llama 2 tokenizer): ${modelDir}\n`);
  process.stdout.write(`synthetic dataset (${DEMO.data.count} sentences, field "topic"): ${dataFile}\n\n`);

  const opts: PipelineOptions = {
    ...DEMO.run, modelDir, dataPath: dataFile, outDir, force: true,
    steps: Number(arg("steps") ?? DEMO.run.steps), threads: Number(arg("threads") ?? 2),
  };
  let lastShown = 0;
  // One estimate per training run: the step count going back to 1 starts a new one.
  const clock = new EtaClock();
  const onEvent = (e: PipelineEvent) => {
    if (e.message !== undefined) {
      process.stdout.write(`[${PIPELINE_PHASES.indexOf(e.phase) + 1}/${PIPELINE_PHASES.length}] ${e.phase}: ${e.message}\n`);
      lastShown = 0;
    } else if (e.step !== undefined && e.totalSteps !== undefined) {
      const left = clock.secondsLeft(e.step, e.totalSteps);
      if (e.step - lastShown < e.totalSteps / 6 && e.step !== e.totalSteps) return;
      lastShown = e.step;
      process.stdout.write(`      step ${String(e.step).padStart(4)}/${e.totalSteps}  loss ${e.loss!.toFixed(4)}  ${etaText(left)}\n`);
    }
  };
  const report = await runPipeline(opts, { onEvent });
  process.stdout.write(`\n${pipelineSummary(report)}\n`);
  process.stdout.write(`\nthe same from the command line:\n  npx lora-drop pipeline --model ${modelDir} --data ${dataFile} --out ${outDir} --force \\\n`
    + `    --sample-fraction ${opts.sampleFraction} --threshold ${opts.threshold} --stratify-by ${opts.stratifyBy} --r ${opts.r} --lora-alpha ${opts.loraAlpha} \\\n`
    + `    --targets ${opts.targets!.join(",")} --steps ${opts.steps} --sample-steps ${opts.sampleSteps} --lr ${opts.lr} --max-tokens ${opts.maxTokens} --warmup-steps ${opts.warmupSteps} --device cpu\n`);
  await sweepDemo(modelDir, dataFile, outDir, opts.threads);
  process.stdout.write(`demo finished in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

/**
 * The sweep of the short run's adapter with the pipeline's own profile, on the first examples of the dataset
 * (mostly outside the sample that adapter was trained on): its table, and where the pipeline's T lands on it.
 */
async function sweepDemo(modelDir: string, dataFile: string, outDir: string, threads: number | undefined): Promise<void> {
  const profilePath = path.join(outDir, PIPELINE_FILES.profile);
  const adapterDir = path.join(outDir, PIPELINE_FILES.sample_adapter);
  process.stdout.write(`\nsweep: the loss of the short run's adapter pruned at every threshold, before retraining\n`);
  const sweep = await runSweep({ modelDir, adapterDir, profile: profilePath, dataPath: dataFile, maxExamples: 64, maxTokens: DEMO.run.maxTokens, device: "cpu", threads });
  const file = sweepPathFor(profilePath, "share");
  writeSweep(file, sweep, { files: [profilePath, dataFile], folders: [modelDir, adapterDir] }, true);
  process.stdout.write(`${sweepTable(sweep)}\n`);
  const at = measuredPointIndex(sweep, readProfile(profilePath), DEMO.run.threshold);
  const p = at === undefined ? undefined : sweep.points[at];
  if (p) {
    process.stdout.write(`at the pipeline's T = ${DEMO.run.threshold}: ${p.lora_params.toLocaleString("en-US")} of ${sweep.adapter.total_params.toLocaleString("en-US")} LoRA parameters, ` +
      `loss ${p.loss.toFixed(4)} before retraining (full adapter ${sweep.full_loss.toFixed(4)}, base model ${sweep.base_loss.toFixed(4)})\n`);
  }
  process.stdout.write(`wrote ${file} (the panel shows it beside the profile)\n`);
  process.stdout.write(`the same from the command line:\n  npx lora-drop sweep --model ${modelDir} --adapter ${adapterDir} --profile ${profilePath} --data ${dataFile} --max-tokens ${DEMO.run.maxTokens} --out ${file} --force --device cpu\n`);
}

if (require.main === module) {
  main().then(() => undefined, (e) => { process.exitCode = reportError(e); });
}
