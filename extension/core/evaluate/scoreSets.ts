/**
 * The loss of LoRA configurations of one adapter on the chosen engine: onnxruntime in this process
 * (evaluateLoraSets, one compiled model whose LoRA values are inputs) or PyTorch + transformers + PEFT in a Python
 * child process (torchLoraSets, one loaded model whose LoRA layers are set per configuration). The sweep and the
 * ablation criterion call this; both engines score the same configurations on the same batches.
 */
import type { Adapter } from "../adapter/peftAdapter";
import type { TokenizedExample } from "../data/dataset";
import type { HfModel } from "../models/hfModel";
import { checkEngineOptions } from "../torch/engineOptions";
import type { RunContext } from "../util/progress";
import { evaluateLoraSets, type Evaluation, type EvaluationOptions, type LoraSetSource } from "./loraSets";
import { torchLoraSets } from "./torchLoraSets";

/** Scores every configuration of `sets` (configurations of `adapter`'s layout) on `examples`, on `opts.engine`. */
export function scoreLoraSets(model: HfModel, adapter: Adapter, sets: LoraSetSource, examples: TokenizedExample[], opts: EvaluationOptions = {}, ctx: RunContext = {}): Promise<Evaluation> {
  if (checkEngineOptions(opts) === "torch") return torchLoraSets(model, adapter, sets, examples, opts, ctx);
  return evaluateLoraSets(model, adapter.loras, sets, examples, opts, ctx);
}
