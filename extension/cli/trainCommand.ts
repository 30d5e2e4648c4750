/**
 * `lora-drop train`: LoRA fine-tuning on either engine (onnxruntime in this process, or PyTorch + PEFT in Python,
 * on one process or several across machines), writing a PEFT adapter folder. A progress bar shows the step, loss,
 * learning rate, tokens/s and ETA; Ctrl-C cancels between steps and writes nothing half-done.
 */
import { Command, Option, InvalidArgumentError } from "commander";
import { trainLora, TrainResult } from "../core/train/train";
import { TRAIN_DEFAULTS } from "../core/train/settings";
import { archModules, targetMatches } from "../core/models/arch";
import { LoraDropError } from "../core/util/errors";
import { runLabel } from "../core/torch/engineChoice";
import { terminalContext } from "./terminal";
import { floatArg, formerOption, intArg, memoryBudgetOption, nonNegIntArg, threadsArg } from "./args";
import { addEngineOptions, addLaunchOptions, engineArgs, launchArgs, nodeDoneLine } from "./engineArgs";
import { StreamChoice } from "../core/stream/memoryBudget";
import { SUPPORTED_ARCHITECTURES } from "../core/models/config";

/** Parses a comma-separated list of target modules. */
export function targetsArg(v: string): string[] {
  const list = v.split(",").map((s) => s.trim()).filter(Boolean);
  // Checked against every architecture here; the trainer checks them against the model's own modules.
  const bad = list.find((m) => !SUPPORTED_ARCHITECTURES.some((a) => targetMatches(a, m)));
  if (bad || list.length === 0) {
    const known = [...new Set(SUPPORTED_ARCHITECTURES.flatMap((a) => archModules(a)))];
    throw new InvalidArgumentError(`expected modules from ${known.join(",")} (or their last name parts, e.g. query, c_attn), got ${v}`);
  }
  return list;
}

/** Parses a comma-separated list of layer indices. */
export function layersArg(v: string): number[] {
  const list = v.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`expected layer indices such as 3,5,7, got ${v}`);
  return list;
}

/** The lines printed after training (on a node other than node 0: that it is done, and who writes). */
export function trainSummary(r: TrainResult): string {
  const first = r.losses[0]?.loss;
  const processes = r.worldSize && r.worldSize > 1 ? `, ${r.worldSize} processes` : "";
  if (r.nodeRank) return `steps: ${r.steps}; loss ${r.finalLoss.toFixed(4)}; ran on: ${runLabel(r.device)}${processes}\n${nodeDoneLine(r.nodeRank, r.adapterDir, "adapter")}`;
  return [
    `trainable LoRA parameters: ${r.trainableParams.toLocaleString("en-US")}` +
      (r.headParams ? ` (plus the classification head: ${r.headParams.toLocaleString("en-US")} values, saved as modules_to_save)` : ""),
    `steps: ${r.steps}; loss ${first !== undefined ? `${first.toFixed(4)} → ` : ""}${r.finalLoss.toFixed(4)}; ran on: ${runLabel(r.device)}${processes}; ${r.seconds.toFixed(1)} s`,
    `wrote ${r.adapterDir}`,
  ].join("\n");
}

/** Registers the command. */
export function registerTrain(program: Command): void {
  const d = TRAIN_DEFAULTS;
  const cmd = program
    .command("train")
    .description("fine-tune a LoRA on a dataset and write a PEFT adapter folder")
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .requiredOption("--data <file>", "dataset: .jsonl (text | prompt+completion | input_ids) or .txt")
    .requiredOption("--out <dir>", "adapter folder to write")
    .option("--adapter <dir>", "start from this adapter's structure and values")
    // No commander defaults for the structure: with --adapter it comes from the adapter, and the engine warns
    // about structure options given alongside it.
    .option("--r <n>", `LoRA rank (default ${d.r})`, intArg)
    .option("--lora-alpha <x>", `lora_alpha; the LoRA output is scaled by alpha / r (default ${d.loraAlpha})`, floatArg)
    .addOption(formerOption("--alpha <x>", floatArg))
    .option("--targets <list>", `target modules, comma-separated (default ${d.targets.join(",")})`, targetsArg)
    .option("--use-rslora", "scale by alpha/√r (rsLoRA)")
    .option("--shared-layers <list>", "layers that share one LoRA per module (LoRA-drop's share set)", layersArg)
    .option("--epochs <n>", `passes over the data (default ${d.epochs})`, intArg)
    .option("--steps <n>", "optimiser steps (instead of --epochs)", intArg)
    .option("--lr <x>", "peak learning rate", floatArg, d.lr)
    .option("--batch-size <n>", "sequences per micro-batch", intArg, d.batchSize)
    .option("--grad-accum <n>", "micro-batches per optimiser step", intArg, d.gradAccum)
    .option("--max-tokens <n>", `tokens per example at most (default ${d.maxTokens})`, intArg)
    .addOption(formerOption("--max-length <n>", intArg))
    .option("--warmup <n>", "linear warm-up steps", nonNegIntArg, d.warmupSteps)
    .addOption(new Option("--schedule <s>", "learning-rate decay after warm-up").choices(["linear", "cosine", "constant"]).default(d.schedule))
    .option("--weight-decay <x>", "AdamW weight decay", floatArg, d.weightDecay)
    .option("--max-grad-norm <x>", "clip gradients to this global norm (0: no clipping)", floatArg, d.maxGradNorm)
    .option("--lora-dropout <p>", "dropout on the LoRA input during training", floatArg)
    .option("--seed <n>", "random seed (init, data order, dropout)", nonNegIntArg, d.seed)
    .option("--freeze-head", "sequence classifiers: keep the classification head frozen (default: it trains with the LoRA, as PEFT's modules_to_save)");
  addLaunchOptions(addEngineOptions(cmd))
    .option("--threads <n>", "CPU threads (per process)", threadsArg)
    .option("--prepack", "onnx engine: prepack the weights for the CPU's matrix kernels: faster steps, but the frozen weights are held twice")
    .addOption(memoryBudgetOption())
    .addOption(new Option("--stream <mode>", "onnx engine: train block by block from the model files, recomputing activations (auto: when the model does not fit the budget)").choices(["auto", "on", "off"]).default("auto"))
    .option("--checkpoint-every <n>", "write a checkpoint every N steps", nonNegIntArg, 0)
    .option("--checkpoint-dir <dir>", "checkpoint folder (default: <out>.checkpoint)")
    .option("--resume", "continue from the checkpoint, if there is one")
    .option("--log <file>", "JSONL log of every step")
    .option("--force", "replace an existing output folder")
    .option("--quiet", "no progress output")
    .option("--verbose", "log details (execution provider, checkpoints)")
    .action(async (o) => {
      if (o.epochs !== undefined && o.steps !== undefined) throw new LoraDropError("INVALID_ARGUMENT", "give --epochs or --steps, not both");
      const ctx = terminalContext("train", o);
      try {
        const result = await trainLora({
          modelDir: o.model, dataPath: o.data, outDir: o.out, initAdapterDir: o.adapter,
          r: o.r, loraAlpha: o.loraAlpha ?? o.alpha, targets: o.targets, useRslora: o.useRslora, loraDropout: o.loraDropout, sharedLayers: o.sharedLayers,
          epochs: o.epochs, steps: o.steps, lr: o.lr, batchSize: o.batchSize, gradAccum: o.gradAccum, maxTokens: o.maxTokens ?? o.maxLength,
          warmupSteps: o.warmup, schedule: o.schedule, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm, seed: o.seed,
          ...engineArgs(o), ...launchArgs(o), threads: o.threads, prepack: o.prepack === true ? true : undefined, checkpointEvery: o.checkpointEvery, checkpointDir: o.checkpointDir,
          resume: o.resume === true, logFile: o.log, force: o.force === true,
          memoryBudget: o.memoryBudget, stream: o.stream as StreamChoice, ...(o.freezeHead ? { trainHead: false } : {}),
        }, ctx);
        ctx.done();
        if (!o.quiet) process.stdout.write(`${trainSummary(result)}\n`);
      } finally {
        ctx.done();
      }
    });
}

