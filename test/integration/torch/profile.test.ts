/**
 * The torch engine's profile against the onnx engine's, on models and adapters written by transformers' and PEFT's
 * own save_pretrained: Llama with grouped-query attention (rank and alpha patterns), Qwen2 (rsLoRA, tied
 * embeddings), GPT-2 (Conv1D, fan_in_fan_out, layers_to_transform) and a RoBERTa sequence classifier (its head saved
 * through modules_to_save). All three criteria: normalised importance within 1e-5, per-token norms within 1e-4
 * relative. One engine run per architecture measures every criterion.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { ProfileFile } from "../../../extension/core/importance/profileSchema";
import type { TorchCriterion } from "../../../extension/core/torch/protocol";
import { torchProfiles } from "../../../extension/core/importance/torchProfile";
import { FixtureArch, makeTorchFixtures, torchEnvOrSkip } from "../../torchEnv";

const { env, skip } = torchEnvOrSkip();
const ARCHS: FixtureArch[] = ["llama", "qwen2", "gpt2", "roberta"];
const CRITERIA: TorchCriterion[] = ["output", "weight", "gradient"];

/** Largest absolute difference between two equally shaped number lists. */
function maxAbs(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(0, ...a.map((x, i) => Math.abs(x - b[i]!)));
}

function compare(arch: string, criterion: TorchCriterion, torch: ProfileFile, onnx: ProfileFile): void {
  const what = `${arch} ${criterion}`;
  assert.deepEqual(torch.modules, onnx.modules, what);
  assert.ok(onnx.importance.per_layer_raw.some((g) => g > 0), `${what}: the onnx profile is all zeros`);
  const perLayer = maxAbs(torch.importance.per_layer, onnx.importance.per_layer);
  assert.ok(perLayer <= 1e-5, `${what}: per-layer importance differs by ${perLayer}`);
  for (const m of onnx.modules) {
    const d = maxAbs(torch.importance.per_module[m]!, onnx.importance.per_module[m]!);
    assert.ok(d <= 1e-5, `${what}: ${m} importance differs by ${d}`);
  }
  assert.deepEqual(torch.sequences.map((s) => s.ids), onnx.sequences.map((s) => s.ids), `${what}: different token ids`);
  if (criterion !== "output") {
    assert.equal(torch.norms, undefined);
    return;
  }
  let worst = 0;
  for (const m of onnx.modules) {
    onnx.norms![m]!.forEach((layer, l) => layer.forEach((seq, s) => seq.forEach((want, t) => {
      const got = torch.norms![m]![l]![s]![t]!;
      // Relative to the token's own norm; a zero norm (a layer without LoRA) must stay exactly zero.
      worst = Math.max(worst, want === 0 ? Math.abs(got) * 1e12 : Math.abs(got - want) / Math.abs(want));
    })));
  }
  assert.ok(worst <= 1e-4, `${what}: a per-token norm differs by ${worst} relative`);
}

test("torch-engine profiles equal onnx-engine profiles (llama GQA, qwen2, gpt2, roberta; output, weight, gradient)", { skip }, async (t) => {
  const fixtures = makeTorchFixtures(env!, ARCHS);
  for (const arch of ARCHS) {
    await t.test(arch, async () => {
      const fx = fixtures[arch];
      const paths = { modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, batchSize: 4 };
      const torch = await torchProfiles({ ...paths, device: "cpu", python: env!.python, env: env!.env }, CRITERIA);
      for (const criterion of CRITERIA) {
        const onnx = await profileAdapter({ ...paths, device: "cpu", criterion });
        const got = torch[criterion]!;
        assert.equal(got.criterion, criterion);
        assert.match(got.device, /^torch cpu/);
        compare(arch, criterion, got, onnx);
      }
    });
  }
});
