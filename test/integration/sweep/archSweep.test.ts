/**
 * `sweep` on every other supported architecture: GPT-2 (causal LM), the RoBERTa and BERT sequence classifiers
 * (class cross-entropy through the adapter's saved head, and accuracy), Qwen2 (q/k/v biases) and Mistral. Each
 * point's loss equals the float64 reference's loss of the adapter `prune` writes at that threshold (≤ 1e-5
 * relative), and a classifier's accuracy equals the reference's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { pruneAdapter } from "../../../extension/core/prune/prune";
import { loadHfModel, type HfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { withAdapterHead } from "../../../extension/core/adapter/adapterHead";
import type { LoraModule } from "../../../extension/core/adapter/loraModule";
import { writeTinyModel, writeTinyAdapter } from "../../../extension/core/demo/tinyModel";
import { runSweep } from "../../../extension/core/sweep/sweep";
import { writeTinyArchModel, writeTinyArchAdapter } from "../../fixtures/tinyArch";
import { gpt2Reference, encoderReference } from "../../reference/archReference";
import { referenceLoss as llamaLoss } from "../train/trainReference";
import { tmpDir } from "../../helpers";

const SEQS = [[0, 45, 66, 29, 33, 26, 2], [0, 31, 181, 2], [0, 3, 4, 5, 6, 7, 8, 9, 10, 2], [0, 12, 14, 2]];
const LABELS = [1, 0, 2, 1];

/** Mean loss and accuracy of the float64 reference over SEQS: next-token cross-entropy, or the class cross-entropy. */
function reference(model: HfModel, loras: LoraModule[]): { loss: number; accuracy?: number } {
  const arch = model.config.architecture;
  const lse = (row: ArrayLike<number>) => { const a = Array.from(row); const mx = Math.max(...a); return mx + Math.log(a.reduce((s, v) => s + Math.exp(v - mx), 0)); };
  if (arch === "gpt2") {
    let sum = 0, n = 0;
    for (const ids of SEQS) {
      const { logits } = gpt2Reference(model, loras, ids);
      const V = model.config.vocabSize;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        sum += lse(row) - row[ids[t + 1]!]!;
        n++;
      }
    }
    return { loss: sum / n };
  }
  if (arch === "roberta" || arch === "bert") {
    let sum = 0, correct = 0;
    SEQS.forEach((ids, i) => {
      const { logits } = encoderReference(model, loras, ids);
      sum += lse(logits) - logits[LABELS[i]!]!;
      if (logits.indexOf(Math.max(...logits)) === LABELS[i]) correct++;
    });
    return { loss: sum / SEQS.length, accuracy: correct / SEQS.length };
  }
  return { loss: llamaLoss(model, loras, SEQS, SEQS.map((s) => s.map((_, t) => t > 0))) };
}

/** Writes the model and adapter of `arch` into `dir`. */
function writeArch(dir: string, arch: string): void {
  if (arch === "gpt2" || arch === "roberta" || arch === "bert") {
    const cfg = writeTinyArchModel(path.join(dir, "model"), { architecture: arch, numLayers: 4, hiddenSize: 16, numHeads: 2, numLabels: 3 });
    writeTinyArchAdapter(path.join(dir, "adapter"), cfg, { r: 2, targets: arch === "gpt2" ? ["c_attn", "c_fc"] : ["query", "value"], head: arch !== "gpt2" });
  } else {
    const cfg = writeTinyModel(path.join(dir, "model"), { architecture: arch as "qwen2" | "mistral", numLayers: 4, tokenizer: false, attentionBias: arch === "qwen2" });
    writeTinyAdapter(path.join(dir, "adapter"), cfg, { targets: ["q_proj", "v_proj"] });
  }
}

for (const arch of ["gpt2", "roberta", "bert", "qwen2", "mistral"]) {
  test(`${arch} sweep: every point equals the reference loss of the adapter prune writes`, async () => {
    const dir = tmpDir();
    writeArch(dir, arch);
    const [modelDir, adapterDir] = [path.join(dir, "model"), path.join(dir, "adapter")];
    const data = path.join(dir, "data.jsonl");
    fs.writeFileSync(data, SEQS.map((ids, i) => JSON.stringify({ input_ids: ids, label: LABELS[i] })).join("\n"));
    const profileFile = path.join(dir, "profile.json");
    writeProfile(profileFile, await profileAdapter({ modelDir, adapterDir, dataPath: data, device: "cpu" }));
    const sweep = await runSweep({ modelDir, adapterDir, profile: profileFile, dataPath: data, device: "cpu" });
    const base = loadHfModel(modelDir);
    const classifier = arch === "roberta" || arch === "bert";
    assert.equal(sweep.task, classifier ? "sequence-classification" : "causal-lm");
    assert.equal(sweep.points.length, 4, "one point per kept-set size");
    const source = loadAdapter(adapterDir, base.config);
    const withHead = (a: ReturnType<typeof loadAdapter>) => (classifier ? withAdapterHead(base, a) : base);
    const full = reference(withHead(source), source.loras);
    assert.ok(Math.abs(sweep.full_loss - full.loss) <= 1e-5 * full.loss, `full ${sweep.full_loss} vs ${full.loss}`);
    const none = reference(withHead(source), []);
    assert.ok(Math.abs(sweep.base_loss - none.loss) <= 1e-5 * none.loss, `base ${sweep.base_loss} vs ${none.loss}`);
    if (classifier) assert.equal(sweep.full_accuracy, full.accuracy);
    for (const [i, p] of sweep.points.entries()) {
      const out = path.join(dir, `pruned-${i}`);
      await pruneAdapter({ adapterDir, profile: profileFile, outDir: out, threshold: p.threshold });
      const written = loadAdapter(out, base.config);
      // The written adapter carries the classifier's head (modules_to_save) over: the reference reads it from there.
      const ref = reference(withHead(written), written.loras);
      assert.ok(Math.abs(p.loss - ref.loss) <= 1e-5 * ref.loss, `${arch} T=${p.threshold}: ${p.loss} vs reference ${ref.loss}`);
      if (classifier) assert.equal(p.accuracy, ref.accuracy, `${arch} T=${p.threshold}: accuracy`);
    }
  });
}
