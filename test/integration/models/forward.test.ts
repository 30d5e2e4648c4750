/**
 * The ONNX forward pass (logits and LoRA norm taps) against the plain-loop reference, on fixtures covering the
 * architecture features the engine supports.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { referenceForward } from "../../reference/llamaReference";
import { makeFixture, maxRelErr } from "../../helpers";
import { TinyModelOptions, TinyAdapterOptions } from "../../../extension/core/demo/tinyModel";

const SEQS = [[1, 45, 66, 29, 33, 26], [1, 31, 181], [1, 2, 3, 4, 5, 6, 7, 8, 9]];

function examples(): TokenizedExample[] {
  return SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i }));
}

async function checkAgainstReference(name: string, m: TinyModelOptions, a: TinyAdapterOptions, linearAsMatMul = false): Promise<void> {
  const fx = makeFixture({ tokenizer: false, ...m }, a);
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const runner = await LoraForwardRunner.create(model, adapter.loras, { logits: true, loraNorms: true, device: "cpu", linearAsMatMul });
  try {
    const batch = makeBatch(examples());
    const out = await runner.run(batch, adapter.loras);
    const V = model.config.vocabSize;
    for (const [b, ids] of SEQS.entries()) {
      const ref = referenceForward(model, adapter.loras, ids);
      const got = out.logits!.subarray(b * batch.seq * V, (b * batch.seq + ids.length) * V);
      // Relative to the logits' scale: max|got - ref| / max|ref| (fp32 accumulation vs float64).
      const scale = ref.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const { err, at } = maxRelErr(got, ref.logits, scale);
      assert.ok(err < 1e-4, `${name}: logits of sequence ${b} differ by ${err} of their scale at ${at}`);
      runner.graph.tapOrder.forEach((tap, ti) => {
        const refN = ref.norms.get(`${tap.layer}.${tap.module}`)!;
        const gotN = Array.from({ length: ids.length }, (_, t) => out.loraNorms![(ti * batch.batch + b) * batch.seq + t]!);
        const e = maxRelErr(gotN, refN, 1e-3 * Math.max(...refN));
        assert.ok(e.err < 1e-4, `${name}: norms of layer ${tap.layer} ${tap.module} seq ${b} differ by ${e.err}`);
        for (let t = ids.length; t < batch.seq; t++) {
          assert.equal(out.loraNorms![(ti * batch.batch + b) * batch.seq + t], 0, "padding positions have zero norm");
        }
      });
    }
    assert.equal(runner.graph.tapOrder.length, adapter.loras.length);
  } finally {
    await runner.dispose();
  }
}

test("llama with GQA, untied head, q/v LoRA", () => checkAgainstReference("gqa", { numHeads: 4, numKvHeads: 2 }, {}));
test("tied embeddings, every target module, rsLoRA", () =>
  checkAgainstReference("tied", { tieWordEmbeddings: true, numKvHeads: 4 }, { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], useRslora: true }));
test("qwen2 with q/k/v biases, rank_pattern and alpha_pattern", () =>
  checkAgainstReference("qwen2", { architecture: "qwen2", numHeads: 4, numKvHeads: 1 }, { targets: ["q_proj", "k_proj", "v_proj"], rankPattern: { k_proj: 2 }, alphaPattern: { "layers.1.self_attn.q_proj": 32 } }));
test("qwen2 with biases, projections built as MatMul with transposed weights (the WebGPU variant)", () =>
  checkAgainstReference("qwen2-matmul", { architecture: "qwen2", numHeads: 4, numKvHeads: 2 }, { targets: ["q_proj", "v_proj", "down_proj"] }, true));
test("mistral, F16 weights, sharded checkpoint", () =>
  checkAgainstReference("f16", { architecture: "mistral", dtype: "F16", shards: 3 }, { targets: ["q_proj", "down_proj"] }));
test("BF16 weights, layers_to_transform, explicit head_dim, rope_theta", () =>
  checkAgainstReference("bf16", { dtype: "BF16", headDim: 16, numHeads: 2, numKvHeads: 1, ropeTheta: 500000 }, { layersToTransform: [1, 3], targets: ["v_proj", "up_proj"] }));
