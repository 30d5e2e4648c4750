/**
 * Recomputation in the backward pass (onnx/recompute.ts): an attention-shaped graph built twice, with and without its
 * scores and probabilities marked, must give the same loss and gradients; in the marked graph no backward node reads
 * a marked forward value, and every copy reads the forward activations it needs only through a gate (a Reshape).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GraphBuilder } from "../../../../extension/core/onnx/builder";
import { Ops } from "../../../../extension/core/onnx/ops";
import { buildBackward } from "../../../../extension/core/onnx/autodiff";
import { ort, sessionConfig } from "../../../../extension/core/runtime/session";
import { Rng } from "../../../../extension/core/util/random";

const N = 5, D = 3;

/** L = Σ softmax(q·kᵀ)·v·w, differentiated with respect to q, k and v. */
function build(mark: boolean): { g: GraphBuilder; forwardCount: number; marked: string[]; outputs: string[] } {
  const g = new GraphBuilder("float64");
  const o = new Ops(g);
  const [q, k, v, w] = ["q", "k", "v", "w"].map((n) => g.input(n, "float64", [N, D])) as [string, string, string, string];
  const kT = o.transpose(k, [1, 0]);
  const start = g.nodes.length;
  const probs = o.softmax(o.matmul(q, kT), -1);
  const marked = g.nodes.slice(start).flatMap((n) => n.outputs);
  if (mark) g.recomputeSince(start);
  const loss = o.reduceSum(o.mul(o.matmul(probs, v), w), [0, 1], false);
  const forwardCount = g.nodes.length;
  const grads = buildBackward(g, loss, [q, k, v]);
  const outputs = [loss, ...[q, k, v].map((x) => grads.get(x)!)];
  for (const out of outputs) g.output(out);
  return { g, forwardCount, marked, outputs };
}

async function run(g: GraphBuilder, outputs: string[]): Promise<Float64Array[]> {
  const rt = ort();
  const session = await rt.InferenceSession.create(g.toBytes(), {
    executionProviders: ["cpu"], logSeverityLevel: 3, extra: sessionConfig({ device: "cpu", shardFiles: [], backward: true }),
  });
  const rng = new Rng(7);
  const feeds = Object.fromEntries(["q", "k", "v", "w"].map((n) => [n, new rt.Tensor("float64", Float64Array.from({ length: N * D }, () => rng.normal()), [N, D])]));
  const out = await session.run(feeds);
  await session.release();
  return outputs.map((name) => out[name]!.data as Float64Array);
}

test("recomputed attention probabilities give the same loss and gradients, read nowhere in the backward pass but through gated copies", async () => {
  const plain = build(false);
  const marked = build(true);
  const [a, b] = [await run(plain.g, plain.outputs), await run(marked.g, marked.outputs)];
  a.forEach((values, i) => values.forEach((x, j) => assert.ok(Math.abs(x - b[i]![j]!) <= 1e-12 * Math.max(1, Math.abs(x)), `output ${i}[${j}]: ${x} vs ${b[i]![j]}`)));
  assert.ok(a[1]!.some((x) => Math.abs(x) > 1e-3), "the gradient with respect to q is not zero");

  const { g, forwardCount } = marked;
  const backward = g.nodes.slice(forwardCount);
  const readers = backward.filter((n) => n.inputs.some((i) => marked.marked.includes(i)));
  assert.deepEqual(readers.map((n) => n.op), [], "no backward node reads a marked forward value");
  // The copies: one MatMul and one Softmax (the transpose of k is not marked, so it stays alive instead).
  const producedBy = new Map(g.nodes.flatMap((n) => n.outputs.map((out) => [out, n] as const)));
  const copies = backward.filter((n) => marked.marked.some((m) => producedBy.get(m)!.op === n.op && producedBy.get(m)!.attrs === n.attrs));
  assert.deepEqual(copies.map((n) => n.op).sort(), ["MatMul", "Softmax"]);
  const copyOutputs = new Set(copies.flatMap((n) => n.outputs));
  for (const c of copies) {
    // Graph inputs live through the whole run anyway; a forward activation must come through a gate.
    for (const i of c.inputs) assert.ok(copyOutputs.has(i) || g.inputs.includes(i) || producedBy.get(i)?.op === "Reshape", `${c.op} reads ${i} (${producedBy.get(i)?.op}) without a gate`);
  }
});

test("a backward session disables common-subexpression elimination and names no other optimizer", () => {
  assert.deepEqual(sessionConfig({ device: "cpu", shardFiles: [], backward: true }), { optimization: { disable_specified_optimizers: "CommonSubexpressionElimination" } });
  assert.deepEqual(sessionConfig({ device: "cpu", shardFiles: [], backward: true, prepack: false }), {
    session: { disable_prepacking: "1" }, optimization: { disable_specified_optimizers: "CommonSubexpressionElimination" },
  });
  assert.equal(sessionConfig({ device: "cpu", shardFiles: [] }), undefined);
});
