/**
 * Recomputation (rematerialisation) of forward values in a backward pass. A backward pass reads forward values
 * (a Mul's other factor, a Softmax's output), and onnxruntime keeps each of them alive from the moment the forward
 * pass makes it until its last backward reader: for a decoder that is every layer's activations at once, the
 * training step's peak memory. Values the graph builder marked with `GraphBuilder.recompute` (large outputs of cheap
 * ops: attention probabilities, SiLU, a normalised input) are instead computed again, from the same inputs, by a
 * copy of their producing nodes placed just before their first backward reader, so only the (unmarked) inputs of
 * those copies stay alive across the step.
 *
 * The copies are the same computation on the same inputs, which onnxruntime's common-subexpression elimination
 * would merge back into the forward nodes; a session running such a graph disables it (runtime/session.ts,
 * `backward`). And onnxruntime may run a node as soon as its inputs exist (its default order visits a node's
 * inputs highest index first, so a copy would run during the forward pass and stay alive as long as the value it
 * replaces). So each copy's forward inputs pass through a gate on a backward value of its first reader: a Reshape
 * of the input to its own shape, the shape joined to an empty slice of the backward value's shape. It moves no data
 * (onnxruntime's Reshape aliases its input) and the copy cannot start before the backward pass reaches it.
 */
import { GraphBuilder } from "./builder";

/**
 * Rewrites the nodes after the first `forwardCount` (the backward pass, started from the gradient `seed`) so that
 * every read of a marked forward value goes to a recomputed copy, made once per value and inserted before its first
 * reader. Returns the number of copied nodes.
 */
export function recomputeInBackward(g: GraphBuilder, forwardCount: number, seed: string): number {
  if (!g.recomputed.size) return 0;
  const producer = new Map<string, number>();
  g.nodes.slice(0, forwardCount).forEach((n, i) => n.outputs.forEach((out) => producer.set(out, i)));
  const marked = (v: string) => v !== "" && g.recomputed.has(v) && producer.has(v);
  const backward = g.nodes.splice(forwardCount);
  // Gates are values the loss's gradient flows through (not, say, a shape read from a graph input).
  const backwardValues = new Set([seed]);
  for (const n of backward) if (n.inputs.some((i) => backwardValues.has(i))) for (const o of n.outputs) backwardValues.add(o);
  const copies = new Map<string, string>();
  const gates = new Map<string, string>();
  let copied = 0;
  const shapeOf = (v: string) => g.node("Shape", [v], [{ dtype: "int64", shape: [g.shape(v).length] }])[0]!;
  // `v` unchanged, but computed only once `gate` exists (see the file comment).
  const gated = (v: string, gate: string): string => {
    const key = `${v}\u0000${gate}`;
    const done = gates.get(key);
    if (done) return done;
    let empty = gates.get(gate);
    if (!empty) {
      empty = g.node("Slice", [shapeOf(gate), g.i64([0]), g.i64([0])], [{ dtype: "int64", shape: [0] }])[0]!;
      gates.set(gate, empty);
    }
    const shape = g.node("Concat", [empty, shapeOf(v)], [{ dtype: "int64", shape: [g.shape(v).length] }], { axis: 0 })[0]!;
    const out = g.node("Reshape", [v, shape], [g.info(v)])[0]!;
    gates.set(key, out);
    return out;
  };
  // Copies of a node read the copies of its marked inputs, so a chain of marked values (scores → softmax) is
  // recomputed from its unmarked roots, the inputs that stay alive, each read through the gate.
  const copy = (v: string, gate: string | undefined): string => {
    const done = copies.get(v);
    if (done) return done;
    const n = g.nodes[producer.get(v)!]!;
    const inputs = n.inputs.map((i) => (marked(i) ? copy(i, gate) : gate && producer.has(i) ? gated(i, gate) : i));
    const outputs = g.node(n.op, inputs, n.outputs.map((o) => g.info(o)), n.attrs, n.domain);
    n.outputs.forEach((o, k) => copies.set(o, outputs[k]!));
    copied++;
    return copies.get(v)!;
  };
  // The backward nodes are put back in order, each after the copies it reads (g.node appends).
  // A reader with no backward input (a Transpose of the probabilities) is gated on the latest backward value before
  // it, which the backward pass computes just before the reader anyway.
  let latest: string | undefined;
  for (const n of backward) {
    const gate = n.inputs.find((i) => backwardValues.has(i)) ?? latest;
    const inputs = n.inputs.map((i) => (marked(i) ? copy(i, gate) : i));
    g.nodes.push({ ...n, inputs });
    latest = n.outputs.find((o) => backwardValues.has(o)) ?? latest;
  }
  return copied;
}
