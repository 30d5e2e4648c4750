/**
 * The causal-LM loss computed independently of the ONNX graphs: the plain-loop float64 reference forward pass
 * (test/reference) followed by a straightforward log-softmax, for finite-difference checks of the training graph.
 */
import { HfModel } from "../../../extension/core/models/hfModel";
import { referenceForward } from "../../reference/llamaReference";
import { LoraModule } from "../../../extension/core/adapter/loraModule";

/** Mean next-token cross-entropy over the target tokens (masks[s][t]: token t of sequence s is a target). */
export function referenceLoss(model: HfModel, loras: LoraModule[], seqs: number[][], masks: boolean[][]): number {
  const V = model.config.vocabSize;
  let sum = 0;
  let n = 0;
  seqs.forEach((ids, s) => {
    const { logits } = referenceForward(model, loras, ids);
    for (let t = 0; t + 1 < ids.length; t++) {
      if (!masks[s]![t + 1]) continue;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v]! - max);
      sum += -(logits[t * V + ids[t + 1]!]! - max - Math.log(z));
      n++;
    }
  });
  return sum / n;
}

/** LoRA modules reading their A/B from float64 arrays (the reference converts with Float64Array.from), so perturbations are exact. */
export function float64Modules(loras: LoraModule[], values: Map<string, { A: Float64Array; B: Float64Array }>): LoraModule[] {
  return loras.map((l) => ({ ...l, A: values.get(l.param)!.A as unknown as Float32Array, B: values.get(l.param)!.B as unknown as Float32Array }));
}
