/**
 * Dead-node elimination: what it removes is counted by hand, and the pruned profile graph computes the same LoRA
 * norms as the unpruned one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { Ops } from "../../../extension/core/onnx/ops";
import { pruneDeadNodes } from "../../../extension/core/onnx/deadNodes";
import { buildLlamaForward } from "../../../extension/core/models/llama";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { createSession, f32Tensor, i64Tensor } from "../../../extension/core/runtime/session";
import { makeFixture, maxRelErr } from "../../helpers";

test("pruneDeadNodes drops nodes and initializers no output depends on", () => {
  const g = new GraphBuilder();
  const o = new Ops(g);
  const x = g.input("x", "float32", [2]);
  const live = o.add(x, g.f32([1, 2]));
  o.mul(o.exp(x), g.f32([3, 4])); // dead: nothing reads it
  g.output(live);
  assert.equal(g.nodes.length, 3);
  assert.equal(pruneDeadNodes(g), 2);
  assert.deepEqual(g.nodes.map((n) => n.op), ["Add"]);
  assert.equal(g.initializers.size, 1, "the dead Mul's constant is gone, the Add's stays");
  assert.deepEqual(g.inputs, ["x"]);
});

test("the pruned profile graph skips the dead part of its last layer and gives the same norms", async () => {
  const fx = makeFixture({ tokenizer: false, numLayers: 3 }, { targets: ["q_proj", "v_proj"] });
  const model = loadHfModel(fx.modelDir);
  const loras = loadAdapter(fx.adapterDir, model.config).loras;
  const build = (prune: boolean) => {
    const g = new GraphBuilder();
    const graph = buildLlamaForward(g, model, loras.map(slotOf), { logits: false, loraNorms: true, numLayers: 3 });
    g.output(graph.loraNorms!);
    if (prune) pruneDeadNodes(g);
    return { g, graph };
  };
  const full = build(false), pruned = build(true);
  const gemms = (g: GraphBuilder) => g.nodes.filter((n) => n.op === "Gemm").length;
  // Per layer: 7 projections + 2 Gemms (A, B) per LoRA module. In the last layer only the two LoRA branches matter.
  assert.equal(gemms(full.g), 3 * (7 + 2 * 2));
  assert.equal(gemms(pruned.g), 2 * (7 + 2 * 2) + 2 * 2);

  const ids = [1, 45, 66, 29, 33, 26];
  const norms: Float32Array[] = [];
  for (const { g, graph } of [full, pruned]) {
    const { session } = await createSession(g.toBytes(), { device: "cpu", shardFiles: model.shards.map((s) => s.file) });
    const feeds = { [graph.inputIds]: i64Tensor(ids, [1, ids.length]), [graph.attentionMask]: i64Tensor(ids.map(() => 1), [1, ids.length]) };
    for (const inp of graph.loraInputs) {
      const l = loras.find((m) => m.param === inp.param)!;
      Object.assign(feeds, { [inp.A]: f32Tensor(l.A, [inp.r, inp.inFeatures]), [inp.B]: f32Tensor(l.B, [inp.outFeatures, inp.r]) });
    }
    norms.push((await session.run(feeds))[graph.loraNorms!]!.data as Float32Array);
    await session.release();
  }
  const scale = norms[0]!.reduce((m, v) => Math.max(m, v), 0);
  assert.ok(scale > 0);
  const { err } = maxRelErr(norms[1]!, norms[0]!, scale);
  assert.ok(err < 1e-6, `pruned and full graphs' norms differ by ${err} of scale`);
});
