/**
 * GPT-2 and the RoBERTa/BERT classifiers: the ONNX forward pass (logits and LoRA norm taps, padded batches) against
 * the plain-loop references, the profiler on them, and the errors for unsupported architectures and heads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadHfModel, parseModelConfig } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { LoraDropError } from "../../../extension/core/util/errors";
import { encodeSafetensors, readTensorF32 } from "../../../extension/core/io/safetensors";
import { writeTinyArchModel, writeTinyArchAdapter, TinyArchOptions, TinyArchAdapterOptions } from "../../fixtures/tinyArch";
import { gpt2Reference, encoderReference } from "../../reference/archReference";
import { maxRelErr, tmpDir } from "../../helpers";

// Ids avoid the encoders' padding ids (roberta 1, bert 0) inside sequences; rows have different lengths (padding).
const SEQS = [[0, 45, 66, 29, 33, 26, 2], [0, 31, 181, 2], [0, 3, 4, 5, 6, 7, 8, 9, 10, 2]];

function examples(): TokenizedExample[] {
  return SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map((_, t) => t > 0), example: i }));
}

function fixture(m: TinyArchOptions, a: TinyArchAdapterOptions): { modelDir: string; adapterDir: string } {
  const dir = tmpDir();
  const modelDir = path.join(dir, "model"), adapterDir = path.join(dir, "adapter");
  const cfg = writeTinyArchModel(modelDir, m);
  writeTinyArchAdapter(adapterDir, cfg, a);
  return { modelDir, adapterDir };
}

async function checkAgainstReference(name: string, m: TinyArchOptions, a: TinyArchAdapterOptions, expectTaps: number): Promise<void> {
  const fx = fixture(m, a);
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  assert.equal(adapter.loras.length, expectTaps, `${name}: LoRA modules read`);
  const runner = await LoraForwardRunner.create(model, adapter.loras, { logits: true, loraNorms: true, device: "cpu" });
  try {
    const batch = makeBatch(examples(), m.architecture === "roberta" ? 1 : 0);
    const out = await runner.run(batch, adapter.loras);
    const encoder = m.architecture !== "gpt2";
    for (const [b, ids] of SEQS.entries()) {
      const ref = encoder ? encoderReference(model, adapter.loras, ids) : gpt2Reference(model, adapter.loras, ids);
      const width = encoder ? model.config.numLabels! : model.config.vocabSize;
      const got = encoder ? out.logits!.subarray(b * width, (b + 1) * width) : out.logits!.subarray(b * batch.seq * width, (b * batch.seq + ids.length) * width);
      const scale = ref.logits.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
      const { err, at } = maxRelErr(got, ref.logits, scale);
      assert.ok(err < 1e-4, `${name}: logits of sequence ${b} differ by ${err} of their scale at ${at}`);
      runner.graph.tapOrder.forEach((tap, ti) => {
        const refN = ref.norms.get(`${tap.layer}.${tap.module}`)!;
        const gotN = Array.from({ length: ids.length }, (_, t) => out.loraNorms![(ti * batch.batch + b) * batch.seq + t]!);
        const e = maxRelErr(gotN, refN, 1e-3 * Math.max(...refN));
        assert.ok(e.err < 1e-4, `${name}: norms of layer ${tap.layer} ${tap.module} seq ${b} differ by ${e.err}`);
        for (let t = ids.length; t < batch.seq; t++) assert.equal(out.loraNorms![(ti * batch.batch + b) * batch.seq + t], 0, "padding positions have zero norm");
      });
    }
    assert.equal(runner.graph.tapOrder.length, expectTaps);
  } finally {
    await runner.dispose();
  }
}

test("gpt2: fused c_attn LoRA (fan_in_fan_out), tied head, causal + padding mask", () =>
  checkAgainstReference("gpt2", { architecture: "gpt2" }, {}, 3));
test("gpt2: every Conv1D module (c_proj matches both attn.c_proj and mlp.c_proj)", () =>
  checkAgainstReference("gpt2-all", { architecture: "gpt2", numLayers: 2, intermediateSize: 48 }, { targets: ["c_attn", "c_proj", "c_fc"] }, 8));
test("roberta: query/value LoRA, padding-offset positions, classification head", () =>
  checkAgainstReference("roberta", { architecture: "roberta", numLabels: 3 }, {}, 6));
test("roberta: every Linear PEFT can target (key, dense, intermediate.dense, output.dense)", () =>
  checkAgainstReference("roberta-all", { architecture: "roberta", numLayers: 2 }, { targets: ["query", "key", "value", "dense"] }, 12));
test("bert: pooler + classifier head, token types, bidirectional attention", () =>
  checkAgainstReference("bert", { architecture: "bert" }, { targets: ["query", "value", "intermediate.dense"] }, 9));

test("profile runs on gpt2 and roberta with pre-tokenised data; importance matches the reference norms", async () => {
  for (const arch of ["gpt2", "roberta"] as const) {
    const fx = fixture({ architecture: arch }, {});
    const data = path.join(path.dirname(fx.modelDir), "data.jsonl");
    fs.writeFileSync(data, SEQS.map((ids, i) => JSON.stringify({ input_ids: ids, label: i % 2 })).join("\n") + "\n");
    const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", batchSize: 2 });
    const model = loadHfModel(fx.modelDir);
    const adapter = loadAdapter(fx.adapterDir, model.config);
    assert.equal(p.model.architecture, arch);
    assert.deepEqual(p.modules, arch === "gpt2" ? ["attn.c_attn"] : ["attention.self.query", "attention.self.value"]);
    const refRaw = new Array(model.config.numLayers).fill(0);
    for (const s of p.sequences) {
      const ref = arch === "gpt2" ? gpt2Reference(model, adapter.loras, s.ids) : encoderReference(model, adapter.loras, s.ids);
      for (const [key, norms] of ref.norms) {
        const layer = Number(key.slice(0, key.indexOf(".")));
        refRaw[layer] += norms.reduce((a, b) => a + b, 0);
      }
    }
    assert.ok(maxRelErr(p.importance.per_layer_raw, refRaw).err < 1e-4, `${arch}: per-layer importance`);
    assert.ok(Math.abs(p.importance.per_layer.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  }
});

test("unsupported architectures and heads are named with what is supported", () => {
  const f = "/x/config.json";
  assert.throws(() => parseModelConfig(f, { model_type: "t5" }), (e: unknown) =>
    e instanceof LoraDropError && e.code === "UNSUPPORTED_ARCHITECTURE" && /t5/.test(e.message) && /gpt2, roberta, bert/.test(e.message));
  const enc = { model_type: "roberta", hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, vocab_size: 10 };
  assert.throws(() => parseModelConfig(f, { ...enc, architectures: ["RobertaForTokenClassification"] }), (e: unknown) =>
    e instanceof LoraDropError && e.code === "UNSUPPORTED_ARCHITECTURE" && /RobertaForTokenClassification/.test(e.message) && /RobertaForSequenceClassification, BertForSequenceClassification/.test(e.message));
  assert.throws(() => parseModelConfig(f, { ...enc, architectures: ["RobertaForSequenceClassification"], position_embedding_type: "relative_key" }), /relative_key/);
  assert.throws(() => parseModelConfig(f, { model_type: "gpt2", n_embd: 8, n_layer: 1, n_head: 2, vocab_size: 10, activation_function: "relu" }), /activation_function "relu"/);
});

test("gpt2 checkpoints saved without the transformer. prefix (GPT2Model, the original upload) give the same outputs", async () => {
  const fx = fixture({ architecture: "gpt2", numLayers: 2 }, {});
  const model = loadHfModel(fx.modelDir);
  const bareDir = path.join(path.dirname(fx.modelDir), "bare");
  fs.mkdirSync(bareDir);
  fs.copyFileSync(path.join(fx.modelDir, "config.json"), path.join(bareDir, "config.json"));
  const index = model.shards[0]!;
  fs.writeFileSync(path.join(bareDir, "model.safetensors"), encodeSafetensors([...index.tensors.values()].map((e) => {
    const t = readTensorF32(index, e.name);
    return { name: e.name.replace(/^transformer\./, ""), dtype: "F32" as const, shape: t.shape, data: t.data };
  }), { format: "pt" }));
  const bare = loadHfModel(bareDir);
  assert.ok(bare.weights.has("h.0.attn.c_attn.weight") && !bare.weights.has("transformer.wte.weight"));
  const adapter = loadAdapter(fx.adapterDir, bare.config);
  const runner = await LoraForwardRunner.create(bare, adapter.loras, { logits: true, loraNorms: true, device: "cpu" });
  try {
    const ids = SEQS[0]!;
    const out = await runner.run(makeBatch([examples()[0]!]), adapter.loras);
    const ref = gpt2Reference(model, adapter.loras, ids);
    const scale = ref.logits.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
    assert.ok(maxRelErr(out.logits!, ref.logits, scale).err < 1e-4);
  } finally {
    await runner.dispose();
  }
});

test("examples longer than the learned position table are truncated to it (RoBERTa: positions start at padding_idx + 1)", async () => {
  for (const [arch, limit] of [["gpt2", 66], ["roberta", 64]] as const) {
    const fx = fixture({ architecture: arch, numLayers: 1, maxPositions: 66 }, {});
    const data = path.join(path.dirname(fx.modelDir), "long.jsonl");
    fs.writeFileSync(data, JSON.stringify({ input_ids: Array.from({ length: 100 }, (_, t) => 3 + (t % 200)) }) + "\n");
    const p = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, device: "cpu", maxTokens: 512 });
    assert.equal(p.sequences[0]!.ids.length, limit, `${arch}: truncated to ${limit}`);
    assert.ok(p.importance.per_layer.every(Number.isFinite));
  }
});
