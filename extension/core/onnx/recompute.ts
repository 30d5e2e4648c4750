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
 * `backward`). onnxruntime's default execution order is a depth-first walk from the outputs, which reaches a copy
 * only through its backward reader, so the copy runs late and its output is freed after its last reader.
 */
import { GraphBuilder } from "./builder";

/**
 * Rewrites the nodes after the first `forwardCount` (the backward pass) so that every read of a marked forward value
 * goes to a recomputed copy, made once per value and inserted before its first reader. Returns the number of copied
 * nodes.
 */
export function recomputeInBackward(g: GraphBuilder, forwardCount: number): number {
  if (!g.recomputed.size) return 0;
  const producer = new Map<string, number>();
  g.nodes.slice(0, forwardCount).forEach((n, i) => n.outputs.forEach((out) => producer.set(out, i)));
  const marked = (v: string) => v !== "" && g.recomputed.has(v) && producer.has(v);
  const copies = new Map<string, string>();
  let copied = 0;
  // Copies of a node read the copies of its marked inputs, so a chain of marked values (scores → softmax) is
  // recomputed from its unmarked roots (the inputs that stay alive).
  const copy = (v: string): string => {
    const done = copies.get(v);
    if (done) return done;
    const n = g.nodes[producer.get(v)!]!;
    const outputs = g.node(n.op, n.inputs.map((i) => (marked(i) ? copy(i) : i)), n.outputs.map((o) => g.info(o)), n.attrs, n.domain);
    n.outputs.forEach((o, k) => copies.set(o, outputs[k]!));
    copied++;
    return copies.get(v)!;
  };
  // The backward nodes are taken out and put back in order, each after the copies it reads (g.node appends).
  const backward = g.nodes.splice(forwardCount);
  for (const n of backward) {
    const inputs = n.inputs.map((i) => (marked(i) ? copy(i) : i));
    g.nodes.push({ ...n, inputs });
  }
  return copied;
}
