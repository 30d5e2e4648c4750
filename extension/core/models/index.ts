/**
 * One entry point for every architecture's forward graph: the runner, the profiler and the training graph call
 * `buildForward`, which picks the builder by config.json's model_type.
 */
import { GraphBuilder } from "../onnx/builder";
import { HfModel } from "./hfModel";
import { buildLlamaForward } from "./llama";
import { buildGpt2Forward } from "./gpt2";
import { buildEncoderForward } from "./encoder";
import { ForwardGraph, ForwardOptions, LoraSlot } from "./forward";
import { isLlamaFamily } from "./arch";

/** Builds the forward pass of `model` (any supported architecture) into `g`. The caller marks outputs. */
export function buildForward(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: ForwardOptions): ForwardGraph {
  if (opts.segment && !isLlamaFamily(model.config.architecture)) {
    throw new Error(`${model.config.architecture} graphs are not built in segments`);
  }
  switch (model.config.architecture) {
    case "gpt2": return buildGpt2Forward(g, model, slots, opts);
    case "roberta": case "bert": return buildEncoderForward(g, model, slots, opts);
    default: return buildLlamaForward(g, model, slots, opts);
  }
}
