/**
 * Dead-node elimination: onnxruntime executes every node of a graph, even those no output depends on. The profile
 * graph has such nodes: in the last LoRA layer only the path to the last tap matters (with q/v LoRA, the rest of
 * that layer, a whole layer's o_proj and MLP, would run for nothing).
 */
import { GraphBuilder } from "./builder";

/**
 * Removes, in place, the nodes that no graph output depends on and the initializers nothing uses any more; call it
 * after marking the outputs, before serialising. Graph inputs stay declared. Returns the number of nodes removed.
 */
export function pruneDeadNodes(g: GraphBuilder): number {
  const live = new Set(g.outputs);
  const keep: boolean[] = new Array(g.nodes.length).fill(false);
  // Nodes are recorded in topological order, so one reverse pass finds everything an output depends on.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o))) continue;
    keep[i] = true;
    for (const x of n.inputs) if (x !== "") live.add(x);
  }
  const kept = g.nodes.filter((_, i) => keep[i]);
  const removed = g.nodes.length - kept.length;
  g.nodes.splice(0, g.nodes.length, ...kept);
  for (const name of [...g.initializers.keys()]) if (!live.has(name)) g.initializers.delete(name);
  return removed;
}
