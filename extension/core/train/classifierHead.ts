/**
 * The classification head a sequence-classification LoRA trains alongside its LoRA pairs. PEFT's SEQ_CLS task adds
 * the classifier to `modules_to_save`: it is trained in full and saved in the adapter (RoBERTa: classifier.dense and
 * classifier.out_proj; BERT: classifier, its pooler staying frozen). Its starting values are the adapter's saved head,
 * else the base model's classifier, else — a bare encoder such as …ForMaskedLM has none — Hugging Face's own
 * initialisation (weights N(0, 0.02²), biases 0).
 */
import { HfModel } from "../models/hfModel";
import { readTensorF32 } from "../io/safetensors";
import { LoraDropError } from "../util/errors";
import { normalArray, Rng } from "../util/random";
import type { HeadParam } from "../runtime/lossSession";

/** PretrainedConfig.initializer_range's default, which RoBERTa and BERT configs keep. */
export const HEAD_INIT_STD = 0.02;

/** What PEFT's SEQ_CLS task puts in adapter_config.json's modules_to_save. */
export const SEQ_CLS_MODULES_TO_SAVE = ["classifier", "score"];

/** The trained head tensors of a sequence classifier and their shapes (empty for other models). */
export function headTensorShapes(model: HfModel): { name: string; shape: number[] }[] {
  const cfg = model.config;
  if (cfg.head !== "seq-cls") return [];
  const H = cfg.hiddenSize, L = cfg.numLabels ?? 2;
  const dense = (name: string, out: number) => [{ name: `${name}.weight`, shape: [out, H] }, { name: `${name}.bias`, shape: [out] }];
  return cfg.architecture === "roberta" ? [...dense("classifier.dense", H), ...dense("classifier.out_proj", L)] : dense("classifier", L);
}

/** The head's starting values: the model's (base or adapter-saved) tensors where present, else HF's initialisation. */
export function initialHead(model: HfModel, rng: Rng): Map<string, HeadParam> {
  const shapes = headTensorShapes(model);
  const present = shapes.filter((t) => model.weights.has(t.name));
  // A half-present head (a weight without its bias, say) would silently mix trained and random values.
  if (present.length > 0 && present.length < shapes.length) {
    const missing = shapes.find((t) => !model.weights.has(t.name))!;
    throw new LoraDropError("TENSOR_MISSING", `the classifier has ${present.map((t) => t.name).join(", ")} but not ${missing.name}`, model.dir, missing.name);
  }
  const head = new Map<string, HeadParam>();
  for (const t of shapes) {
    const ref = model.weights.get(t.name);
    let data: Float32Array;
    if (ref) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (ref.entry.shape.reduce((a, b) => a * b, 1) !== n || ref.entry.shape.length !== t.shape.length) {
        throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `${t.name} has shape [${ref.entry.shape}], expected [${t.shape}] (num_labels ${model.config.numLabels ?? 2})`, ref.index.file, t.name);
      }
      // The adapter-saved head sits in the adapter's file under its PEFT key, not the base name.
      data = readTensorF32(ref.index, ref.entry.name).data.slice();
    } else {
      data = t.name.endsWith(".bias") ? new Float32Array(t.shape[0]!) : normalArray(rng, t.shape.reduce((a, b) => a * b, 1), HEAD_INIT_STD);
    }
    head.set(t.name, { name: t.name, shape: t.shape, data });
  }
  return head;
}

/** The adapter file's key of a head tensor, as PEFT's get_peft_model_state_dict saves modules_to_save. */
export function headAdapterKey(name: string): string {
  return `base_model.model.${name}`;
}

/** Number of values in the head. */
export function headParamCount(head: Map<string, HeadParam>): number {
  let n = 0;
  for (const t of head.values()) n += t.data.length;
  return n;
}
