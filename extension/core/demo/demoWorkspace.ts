/**
 * A workspace to try LoRA-drop on without a model of one's own: a tiny random Llama with Llama 2's real
 * tokenizer, a LoRA adapter trained on it, and the synthetic dataset it was trained on, plus a note saying what
 * each file is. The adapter starts from random LoRA weights whose size differs from layer to layer, as a long
 * training leaves a real adapter, and is then trained for a few dozen steps: a short training from zero on a random
 * model spreads the importance almost evenly, which would leave LoRA-drop nothing to show. Written offline in seconds, into a folder that is complete or absent.
 * Used by the extension's "Create demo workspace" command and `lora-drop create-demo`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeDirAtomic } from "../io/atomicWrite";
import { LoraDropError } from "../util/errors";
import type { RunContext } from "../util/progress";
import { trainLora } from "../train/train";
import { writeSyntheticDataset, writeTinyAdapter, writeTinyModel } from "./tinyModel";
import { DEMO_FILES, DEMO_MARKER } from "./demoFiles";

/** The demo's sizes and training settings: a few seconds on one CPU core, and layers whose LoRAs clearly differ. */
export const DEMO_WORKSPACE = {
  model: { seed: 21, numLayers: 8, hiddenSize: 64, intermediateSize: 128, numHeads: 4, numKvHeads: 2 },
  data: { seed: 22, count: 96 },
  init: { seed: 24 },
  train: { r: 8, loraAlpha: 16, targets: ["q_proj", "v_proj"], steps: 30, lr: 5e-3, batchSize: 8, maxTokens: 32, warmupSteps: 3, seed: 23 },
} as const;

/** What was written. */
export interface DemoWorkspace {
  dir: string;
  modelDir: string;
  adapterDir: string;
  dataFile: string;
  /** Loss of the adapter's first and last training step. */
  firstLoss: number;
  finalLoss: number;
  seconds: number;
}

/**
 * Writes the demo workspace into `dir`, which must not exist or be empty (nothing of the user's is ever
 * overwritten). Progress: the model, the dataset, then each training step.
 */
export async function createDemoWorkspace(dir: string, ctx: RunContext = {}): Promise<DemoWorkspace> {
  const started = Date.now();
  const target = path.resolve(dir);
  if (fs.existsSync(target)) {
    if (!fs.statSync(target).isDirectory() || fs.readdirSync(target).length > 0) {
      throw new LoraDropError("OUTPUT_EXISTS", "the demo workspace needs a new or empty folder; choose another", target);
    }
    // An empty folder the user picked: replace it whole, so the result is still complete or absent.
  }
  const d = DEMO_WORKSPACE;
  const steps = d.train.steps;
  const total = steps + 2;
  let firstLoss = NaN;
  let finalLoss = NaN;
  await writeDirAtomic(target, async (tmp) => {
    ctx.progress?.report({ step: 0, total, message: "writing the tiny model" });
    const config = writeTinyModel(path.join(tmp, DEMO_FILES.model), { ...d.model, tokenizer: true });
    ctx.progress?.report({ step: 1, total, message: "writing the dataset" });
    writeSyntheticDataset(path.join(tmp, DEMO_FILES.data), d.data);
    // The starting point lives outside the workspace's files and is removed once trained from.
    const init = path.join(tmp, ".adapter-init");
    writeTinyAdapter(init, config, { seed: d.init.seed, r: d.train.r, alpha: d.train.loraAlpha, targets: [...d.train.targets] });
    const result = await trainLora({
      modelDir: path.join(tmp, DEMO_FILES.model), dataPath: path.join(tmp, DEMO_FILES.data), outDir: path.join(tmp, DEMO_FILES.adapter), initAdapterDir: init,
      steps, lr: d.train.lr, batchSize: d.train.batchSize,
      maxTokens: d.train.maxTokens, warmupSteps: d.train.warmupSteps, seed: d.train.seed, device: "cpu", threads: 1,
    }, {
      signal: ctx.signal, log: ctx.log,
      progress: { report: (u) => ctx.progress?.report({ step: 2 + u.step, total, message: `training the adapter: ${u.message ?? `step ${u.step}/${u.total}`}` }) },
    });
    fs.rmSync(init, { recursive: true, force: true });
    firstLoss = result.losses[0]?.loss ?? NaN;
    finalLoss = result.finalLoss;
    fs.writeFileSync(path.join(tmp, DEMO_MARKER), JSON.stringify(markerContents(firstLoss, finalLoss), null, 2) + "\n");
  }, fs.existsSync(target));
  return {
    dir: target, modelDir: path.join(target, DEMO_FILES.model), adapterDir: path.join(target, DEMO_FILES.adapter), dataFile: path.join(target, DEMO_FILES.data),
    firstLoss, finalLoss, seconds: (Date.now() - started) / 1000,
  };
}

/** The marker: what each file is and how the adapter was made, for whoever opens the folder. */
function markerContents(firstLoss: number, finalLoss: number): Record<string, unknown> {
  const d = DEMO_WORKSPACE;
  return {
    what: "A LoRA-drop demo workspace: a tiny random Llama, a LoRA adapter trained on it, and the dataset it was trained on.",
    files: {
      [DEMO_FILES.model]: `random Llama in Hugging Face layout: ${d.model.numLayers} layers, hidden size ${d.model.hiddenSize}, Llama 2's tokenizer.json`,
      [DEMO_FILES.adapter]: `PEFT LoRA adapter, r = ${d.train.r} on ${d.train.targets.join(", ")}: random LoRA weights of uneven size per layer, then trained ${d.train.steps} steps on ${DEMO_FILES.data} (loss ${firstLoss.toFixed(3)} → ${finalLoss.toFixed(3)})`,
      [DEMO_FILES.data]: `${d.data.count} synthetic sentences, JSONL with "text" and "topic"`,
    },
    settings: d,
  };
}
