/**
 * The forward pass (logits and LoRA norm taps) on the WebGPU execution provider against the CPU EP, on the small
 * fixtures. Skips with a message where no WebGPU adapter exists (no Vulkan loader, or a driver Dawn refuses, such
 * as Debian bookworm's Mesa 22 lavapipe); scripts/ci/install-webgpu.sh installs one that works. With
 * LORA_DROP_REQUIRE_WEBGPU=1 (set by CI after that script) a missing adapter fails instead of skipping.
 *
 * Tolerance: both EPs compute in fp32 and differ only in summation order (GPU tiling vs MLAS blocking), so they
 * should agree to ~1e-6 of the values' scale; the bound is 1e-4 of scale, the same bound the CPU EP meets against
 * the float64 reference in forward.test.ts, which leaves room for the GPU's own reduction order and fused
 * multiply-adds without letting a wrong mask, rotary table or head mapping (errors of order 1e-1) through.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { streamedLoraNorms } from "../../../extension/core/stream/streamForward";
import { trainLora } from "../../../extension/core/train/train";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { providerLooksInstalled } from "../../../extension/core/runtime/session";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { makeFixture, maxRelErr } from "../../helpers";
import { TinyModelOptions, TinyAdapterOptions } from "../../../extension/core/demo/tinyModel";
import { TrainOptions } from "../../../extension/core/train/settings";

const TOLERANCE = 1e-4;
// Different lengths, so the batch has padding and the attention and tap masks are exercised.
const SEQS = [[1, 45, 66, 29, 33, 26, 7, 99], [1, 31, 181], [1, 2, 3, 4, 5, 6]];

function examples(): TokenizedExample[] {
  return SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true), example: i }));
}

/** Why WebGPU cannot run here, or undefined when it can; probed once with a real session. */
let probed: Promise<string | undefined> | undefined;
function webgpuUnavailable(): Promise<string | undefined> {
  probed ??= (async () => {
    if (!providerLooksInstalled("webgpu")) return "no Vulkan loader (libvulkan.so.1) found";
    const fx = makeFixture({ tokenizer: false, numLayers: 1 }, {});
    const model = loadHfModel(fx.modelDir);
    try {
      const r = await LoraForwardRunner.create(model, loadAdapter(fx.adapterDir, model.config).loras, { logits: true, loraNorms: false, device: "webgpu" });
      await r.dispose();
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  })();
  return probed;
}

async function compareWithCpu(name: string, m: TinyModelOptions, a: TinyAdapterOptions): Promise<void> {
  const fx = makeFixture({ tokenizer: false, ...m }, a);
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const batch = makeBatch(examples());
  const opts = { logits: true, loraNorms: true } as const;
  const gpu = await LoraForwardRunner.create(model, loras, { ...opts, device: "webgpu" });
  const cpu = await LoraForwardRunner.create(model, loras, { ...opts, device: "cpu" });
  try {
    assert.equal(gpu.device, "webgpu");
    const [g, c] = [await gpu.run(batch, loras), await cpu.run(batch, loras)];
    const V = model.config.vocabSize;
    for (const [b, ids] of SEQS.entries()) {
      // Only real tokens: logits at padding positions are never used.
      const rows = (x: Float32Array) => x.subarray(b * batch.seq * V, (b * batch.seq + ids.length) * V);
      const ref = rows(c.logits!);
      const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      const { err, at } = maxRelErr(rows(g.logits!), ref, scale);
      assert.ok(err < TOLERANCE, `${name}: WebGPU logits of sequence ${b} differ from the CPU EP's by ${err} of their scale at ${at}`);
    }
    const scale = c.loraNorms!.reduce((s, v) => Math.max(s, v), 0);
    assert.ok(scale > 0, "the fixture's LoRA outputs are not all zero");
    const { err, at } = maxRelErr(g.loraNorms!, c.loraNorms!, scale);
    assert.ok(err < TOLERANCE, `${name}: WebGPU LoRA norms differ from the CPU EP's by ${err} of their scale at ${at}`);
    gpu.graph.tapOrder.forEach((_, ti) => SEQS.forEach((ids, b) => {
      for (let t = ids.length; t < batch.seq; t++) assert.equal(g.loraNorms![(ti * batch.batch + b) * batch.seq + t], 0, "padding has zero norm");
    }));
  } finally {
    await gpu.dispose();
    await cpu.dispose();
  }
}

const cases: [string, TinyModelOptions, TinyAdapterOptions][] = [
  ["llama, GQA 4/2, q/v LoRA", { numHeads: 4, numKvHeads: 2 }, {}],
  ["qwen2, q/k/v biases, F16 weights, every module targeted", { architecture: "qwen2", numKvHeads: 1, dtype: "F16" },
    { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] }],
];

for (const [name, m, a] of cases) {
  test(`WebGPU EP agrees with the CPU EP: ${name}`, async (t) => {
    const why = await webgpuUnavailable();
    if (why !== undefined) {
      if (process.env.LORA_DROP_REQUIRE_WEBGPU === "1") assert.fail(`LORA_DROP_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${why}`);
      t.skip(`no WebGPU adapter (${why}); run scripts/ci/install-webgpu.sh to test this path`);
      return;
    }
    await compareWithCpu(name, m, a);
  });
}

/** Skips (or, with LORA_DROP_REQUIRE_WEBGPU=1, fails) where WebGPU cannot run; true when the test may go on. */
async function needWebgpu(t: { skip: (msg: string) => void }): Promise<boolean> {
  const why = await webgpuUnavailable();
  if (why === undefined) return true;
  if (process.env.LORA_DROP_REQUIRE_WEBGPU === "1") assert.fail(`LORA_DROP_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${why}`);
  t.skip(`no WebGPU adapter (${why}); run scripts/ci/install-webgpu.sh to test this path`);
  return false;
}

test("streamed on WebGPU (each block uploaded as it runs) equals the whole graph on the CPU EP", async (t) => {
  if (!(await needWebgpu(t))) return;
  const fx = makeFixture({ tokenizer: false, numLayers: 4, dtype: "BF16", shards: 2, numKvHeads: 2 }, { targets: ["q_proj", "v_proj", "down_proj"] });
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const batch = makeBatch(examples());
  const cpu = await LoraForwardRunner.create(model, loras, { logits: false, loraNorms: true, device: "cpu", truncateAfterLastLora: true });
  let whole: Float32Array;
  try {
    whole = (await cpu.run(batch, loras)).loraNorms!;
  } finally {
    await cpu.dispose();
  }
  for (const layersPerBlock of [1, 3]) {
    const s = await streamedLoraNorms(model, loras, [batch], { device: "webgpu", layersPerBlock, prefetch: true });
    assert.equal(s.device, "webgpu");
    const scale = whole.reduce((m, v) => Math.max(m, v), 0);
    assert.ok(scale > 0, "the fixture's LoRA outputs are not all zero");
    const { err, at } = maxRelErr(s.loraNorms[0]!, whole, scale);
    assert.ok(err < TOLERANCE, `blocks of ${layersPerBlock}: streamed WebGPU norms differ from the CPU EP's by ${err} of scale at ${at}`);
  }
});

test("training on WebGPU follows the CPU EP's losses and ends at the same adapter", async (t) => {
  if (!(await needWebgpu(t))) return;
  const fx = makeFixture({ tokenizer: false, numLayers: 2, numKvHeads: 2 }, {}, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  fs.writeFileSync(data, SEQS.map((ids) => JSON.stringify({ input_ids: ids })).join("\n") + "\n");
  const base: TrainOptions = { modelDir: fx.modelDir, dataPath: data, outDir: "", steps: 3, lr: 1e-2, batchSize: 3, warmupSteps: 0, stream: "off" };
  const gpu = await trainLora({ ...base, outDir: path.join(fx.root, "gpu"), device: "webgpu" });
  const cpu = await trainLora({ ...base, outDir: path.join(fx.root, "cpu"), device: "cpu" });
  assert.equal(gpu.device, "webgpu");
  for (let i = 0; i < 3; i++) {
    const g = gpu.losses[i]!.loss, c = cpu.losses[i]!.loss;
    assert.ok(Math.abs(g - c) <= TOLERANCE * Math.abs(c), `step ${i + 1}: WebGPU loss ${g} vs CPU ${c}`);
  }
  assert.ok(Math.abs(cpu.losses[2]!.loss - cpu.losses[0]!.loss) > 1e-3, "the loss moved, so trained values are compared");
  const model = loadHfModel(fx.modelDir);
  const [ga, ca] = [gpu, cpu].map((r) => loadAdapter(r.adapterDir, model.config).loras);
  for (let m = 0; m < ca!.length; m++) {
    for (const which of ["A", "B"] as const) {
      const ref = ca![m]![which];
      const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      const { err } = maxRelErr(ga![m]![which], ref, scale);
      assert.ok(err < 1e-3, `${ca![m]!.param}.${which}: WebGPU-trained values differ from the CPU's by ${err} of scale`);
    }
  }
});
