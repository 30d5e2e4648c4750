/**
 * One entry point for every architecture's forward graph: the runner, the profiler and the training graph call
 * `buildForward`, which picks the builder by config.json's model_type.
 */
import * as path from "node:path";
import { GraphBuilder } from "../onnx/builder";
import { HfModel } from "../hfModel";
import { Adapter } from "../peftAdapter";
import { readSafetensorsIndex } from "../safetensors";
import { LoraDropError } from "../errors";
import { buildLlamaForward, ForwardGraph, ForwardOptions, LoraSlot } from "./llama";
import { buildGpt2Forward } from "./gpt2";
import { buildEncoderForward } from "./encoder";

/** Builds the forward pass of `model` (any supported architecture) into `g`. The caller marks outputs. */
export function buildForward(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: ForwardOptions): ForwardGraph {
  switch (model.config.architecture) {
    case "gpt2": return buildGpt2Forward(g, model, slots, opts);
    case "roberta": case "bert": return buildEncoderForward(g, model, slots, opts);
    default: return buildLlamaForward(g, model, slots, opts);
  }
}

/**
 * The model with the head weights an adapter saved through modules_to_save (a SEQ_CLS classifier) in place of the
 * base model's: the graph then reads them from the adapter file, which joins the session's shard files.
 */
export function withAdapterHead(model: HfModel, adapter: Adapter): HfModel {
  if (!adapter.head?.size) return model;
  const index = readSafetensorsIndex(path.join(adapter.dir, "adapter_model.safetensors"));
  const weights = new Map(model.weights);
  const heads = model.config.architecture === "roberta" ? ["classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"]
    : model.config.architecture === "bert" ? ["classifier.weight", "classifier.bias"] : [];
  for (const [base, name] of adapter.head) {
    // A bare encoder (…ForMaskedLM) has no classifier: the adapter's is the only one.
    if (!model.weights.has(base) && !heads.includes(base)) throw new LoraDropError("ADAPTER_SHAPE_MISMATCH", `tensor ${name} replaces ${base}, which the model does not have`, index.file, name);
    weights.set(base, { index, entry: index.tensors.get(name)! });
  }
  // The number of classes is the adapter's: a bare encoder's config.json need not state it.
  const out = weights.get(model.config.architecture === "roberta" ? "classifier.out_proj.weight" : "classifier.weight");
  const numLabels = out && out.index === index ? out.entry.shape[0] : model.config.numLabels;
  return { ...model, config: { ...model.config, numLabels }, weights, shards: [...model.shards, index] };
}
