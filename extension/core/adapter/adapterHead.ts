/**
 * A sequence classifier's head as its adapter saved it (PEFT's modules_to_save): the base model seen with those
 * head weights in place of its own, so training, the gradient criterion and evaluation run the adapter's head.
 */
import * as path from "node:path";
import type { HfModel } from "../models/hfModel";
import { readSafetensorsIndex } from "../io/safetensors";
import { LoraDropError } from "../util/errors";
import type { Adapter } from "./peftAdapter";

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
