/**
 * The benchmark's quantized profile graph (scripts/bench/quantGraph.ts) on a tiny Llama: in fp32 it computes the
 * engine's own norms (so its timings compare like with like), and with MatMulNBits projections (weights from the
 * quantized-weight cache) the importance stays near fp32's: 8 bits within 1e-3, 4 bits within 1e-2 (measured 1.5e-4–3.2e-4 and 3.1e-3).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { buildLlamaForward } from "../../../extension/core/models/llama";
import { pruneDeadNodes } from "../../../extension/core/onnx/deadNodes";
import { HfModel, loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { createSession, f32Tensor, i64Tensor } from "../../../extension/core/runtime/session";
import { normalise } from "../../../extension/core/importance/selection";
import { buildQuantProfile, parsePrecision } from "../../../scripts/bench/quantGraph";
import { makeFixture, maxRelErr, tmpDir } from "../../helpers";
import { LoraModule } from "../../../extension/core/adapter/loraModule";

const IDS = [1, 45, 66, 29, 33, 26, 7, 90, 12, 54, 3, 71];

async function norms(bytes: Uint8Array, shardFiles: string[], graph: { inputIds: string; attentionMask: string; loraNorms: string; loraInputs: { param: string; A: string; B: string; r: number; inFeatures: number; outFeatures: number }[] }, loras: LoraModule[]): Promise<Float32Array> {
  const { session } = await createSession(bytes, { device: "cpu", shardFiles, threads: 1 });
  const feeds = { [graph.inputIds]: i64Tensor(IDS, [1, IDS.length]), [graph.attentionMask]: i64Tensor(IDS.map(() => 1), [1, IDS.length]) };
  for (const inp of graph.loraInputs) {
    const l = loras.find((m) => m.param === inp.param)!;
    Object.assign(feeds, { [inp.A]: f32Tensor(l.A, [inp.r, inp.inFeatures]), [inp.B]: f32Tensor(l.B, [inp.outFeatures, inp.r]) });
  }
  const out = (await session.run(feeds))[graph.loraNorms]!.data as Float32Array;
  await session.release();
  return out;
}

/** Per-layer importance from taps ordered layer by layer, `perLayer` taps each. */
function layerImportance(taps: Float32Array, layers: number): number[] {
  const per = taps.length / layers;
  return normalise(Array.from({ length: layers }, (_, l) => taps.subarray(l * per, (l + 1) * per).reduce((a, b) => a + b, 0)));
}

function setup(): { model: HfModel; loras: LoraModule[] } {
  const fx = makeFixture({ tokenizer: false, numLayers: 4, hiddenSize: 64, intermediateSize: 128 }, { targets: ["q_proj", "v_proj"] });
  const model = loadHfModel(fx.modelDir);
  return { model, loras: loadAdapter(fx.adapterDir, model.config).loras };
}

test("in fp32 the bench graph gives the engine's norms", async () => {
  const { model, loras } = setup();
  const g = new GraphBuilder();
  const graph = buildLlamaForward(g, model, loras.map(slotOf), { logits: false, loraNorms: true, numLayers: 4 });
  g.output(graph.loraNorms!);
  pruneDeadNodes(g);
  const engine = await norms(g.toBytes(), model.shards.map((s) => s.file), { ...graph, loraNorms: graph.loraNorms! }, loras);
  const q = await buildQuantProfile(model, loras.map(slotOf), 4, parsePrecision("fp32"), tmpDir());
  const bench = await norms(q.bytes, q.shardFiles, q, loras);
  const scale = engine.reduce((m, v) => Math.max(m, v), 0);
  assert.ok(maxRelErr(bench, engine, scale).err < 1e-6);
  assert.deepEqual(q.tapLayers, [0, 0, 1, 1, 2, 2, 3, 3]);
});

test("MatMulNBits projections: importance within 1e-3 (8 bits) and 1e-2 (4 bits) of fp32, a second build hits the cache", async () => {
  const { model, loras } = setup();
  const cacheDir = path.join(tmpDir(), "quant");
  const fp32 = await buildQuantProfile(model, loras.map(slotOf), 4, parsePrecision("fp32"), cacheDir);
  const ref = layerImportance(await norms(fp32.bytes, fp32.shardFiles, fp32, loras), 4);
  for (const [p, bound] of [["int8-blk32-acc0", 1e-3], ["int8-blk32-acc4", 1e-3], ["int4-blk32-acc4-zp", 1e-2]] as const) {
    const q = await buildQuantProfile(model, loras.map(slotOf), 4, parsePrecision(p), cacheDir);
    assert.ok(q.cacheMisses + q.cacheHits > 0 && q.bytes.length < fp32.bytes.length + 1e6);
    const imp = layerImportance(await norms(q.bytes, q.shardFiles, q, loras), 4);
    const diff = Math.max(...imp.map((x, i) => Math.abs(x - ref[i]!)));
    assert.ok(diff > 0 && diff < bound, `${p}: max |ΔI| ${diff.toExponential(2)}`);
  }
  const again = await buildQuantProfile(model, loras.map(slotOf), 4, parsePrecision("int8-blk32-acc0"), cacheDir);
  assert.deepEqual([again.cacheHits, again.cacheMisses], [1, 0]);
});
