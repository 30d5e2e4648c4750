/**
 * Sequence classification (RoBERTa/BERT heads): the evaluation metrics the paper reports on GLUE — accuracy, and Matthews correlation for a binary task (as CoLA is scored).
 */
import { LoraDropError } from "../util/errors";
import { TokenizedExample } from "../data/dataset";
import { HfModel } from "../models/hfModel";
import { LoraForwardRunner } from "../runtime/loraRunner";
import { batchesOf, makeBatch } from "../data/batch";
import { DeviceChoice } from "../runtime/session";
import { LoraModule } from "../adapter/loraModule";

/** Accuracy, and for two classes Matthews correlation (0 when a margin of the confusion matrix is empty, as sklearn). */
export interface ClassificationMetrics {
  examples: number;
  accuracy: number;
  mcc?: number;
}

/** Metrics of predicted against true class indices. */
export function classificationMetrics(predicted: number[], actual: number[], numLabels: number): ClassificationMetrics {
  const n = actual.length;
  let correct = 0;
  for (let i = 0; i < n; i++) if (predicted[i] === actual[i]) correct++;
  const out: ClassificationMetrics = { examples: n, accuracy: n ? correct / n : NaN };
  if (numLabels === 2) {
    let tp = 0, tn = 0, fp = 0, fn = 0;
    for (let i = 0; i < n; i++) {
      if (predicted[i] === 1) actual[i] === 1 ? tp++ : fp++;
      else actual[i] === 0 ? tn++ : fn++;
    }
    const den = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    out.mcc = den === 0 ? 0 : (tp * tn - fp * fn) / den;
  }
  return out;
}

/** Predicted class of every example (argmax of the head's logits) with the given LoRA, and the metrics. */
export async function evaluateClassifier(model: HfModel, loras: LoraModule[], examples: TokenizedExample[], opts: { device?: DeviceChoice; batchSize?: number; threads?: number } = {}): Promise<ClassificationMetrics & { predicted: number[] }> {
  const L = model.config.numLabels ?? 2;
  const runner = await LoraForwardRunner.create(model, loras, { logits: true, loraNorms: false, device: opts.device ?? "auto", threads: opts.threads });
  const predicted = new Array<number>(examples.length).fill(-1);
  try {
    const order = examples.map((e, i) => ({ ...e, example: i }));
    for (const group of batchesOf(order, opts.batchSize ?? 8)) {
      const { logits } = await runner.run(makeBatch(group, model.config.padTokenId ?? 0), loras);
      group.forEach((e, b) => {
        let best = 0;
        for (let c = 1; c < L; c++) if (logits![b * L + c]! > logits![b * L + best]!) best = c;
        predicted[e.example] = best;
      });
    }
  } finally {
    await runner.dispose();
  }
  const actual = examples.map((e, i) => {
    if (e.label === undefined) throw new LoraDropError("DATASET_INVALID", `example ${i} has no class label`);
    return e.label;
  });
  return { ...classificationMetrics(predicted, actual, L), predicted };
}
