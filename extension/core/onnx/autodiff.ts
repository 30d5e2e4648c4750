/**
 * Reverse-mode automatic differentiation over the nodes a GraphBuilder recorded (micrograd/tinygrad style).
 *
 * Each op's vector-Jacobian product is written once, as a rule in gradRules.ts. This file holds the one generic
 * walk: it finds the nodes that lie on a path from a differentiated input to the loss, visits them in reverse
 * order, asks each rule for its input gradients, reduces broadcast gradients to the input's (static, symbolic)
 * shape and sums the contributions of every consumer. Values that do not depend on a differentiated input (the
 * frozen base weights and everything computed only from them) never get a gradient, so no dW product is built.
 * Forward values the builder marked for recomputation are then recomputed in the backward pass (recompute.ts).
 */
import { AttrValue, ConstTensor, DType, GraphBuilder, Shape } from "./builder";
import { Ops } from "./ops";
import { GRAD_RULES, type GradContext } from "./gradRules";
import { recomputeInBackward } from "./recompute";

/**
 * Appends the backward pass of `loss` (a scalar) with respect to the graph inputs `wrt`; returns their gradients
 * (null: no path). With `seed`, `loss` may be any value and `seed` (a value of its shape, computed in the graph) is
 * the loss's gradient with respect to it: a gradient built by hand where the generic rules would cost memory.
 */
export function buildBackward(g: GraphBuilder, loss: string, wrt: string[], seed?: string): Map<string, string | null> {
  const forward = g.nodes.slice();
  // Values that depend on a differentiated input.
  const depends = new Set(wrt);
  for (const n of forward) if (n.inputs.some((i) => depends.has(i))) for (const out of n.outputs) depends.add(out);
  // Values the loss depends on.
  const reachesLoss = new Set([loss]);
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k]!;
    if (n.outputs.some((out) => reachesLoss.has(out))) for (const i of n.inputs) if (i !== "") reachesLoss.add(i);
  }
  const lossShape = g.shape(loss);
  if (!seed && lossShape.some((d) => d !== 1)) throw new Error(`buildBackward: the loss must be a scalar, got shape [${lossShape}]`);
  if (seed && JSON.stringify(g.shape(seed)) !== JSON.stringify(lossShape)) throw new Error(`buildBackward: the seed's shape [${g.shape(seed)}] is not the loss's [${lossShape}]`);

  const helpers = new ShapeHelpers(g);
  const grads = new Map<string, string>();
  const lossType = g.info(loss).dtype;
  const dLoss = seed ?? g.constant(constOf(lossType, lossShape.map(Number), 1), "dloss");
  grads.set(loss, dLoss);

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (!node.outputs.some((out) => depends.has(out) && reachesLoss.has(out))) continue;
    const gradOutputs = node.outputs.map((out) => grads.get(out) ?? null);
    if (gradOutputs.every((d) => d === null)) continue;
    const rule = GRAD_RULES[node.op];
    if (!rule) throw new Error(`no gradient rule for ${node.op} (node producing ${node.outputs.join(", ")})`);
    const needs = node.inputs.map((i) => i !== "" && depends.has(i) && reachesLoss.has(i));
    const ctx = helpers.context(needs, node.outputs);
    const gradInputs = rule(ctx, node, gradOutputs);
    if (gradInputs.length !== node.inputs.length) {
      throw new Error(`gradient rule for ${node.op} returned ${gradInputs.length} gradients for ${node.inputs.length} inputs`);
    }
    node.inputs.forEach((input, i) => {
      if (!needs[i]) return;
      const d = gradInputs[i];
      if (!d) throw new Error(`gradient rule for ${node.op} gave no gradient for input ${i} (${input}), which needs one`);
      const reduced = helpers.reduceTo(d, g.shape(input));
      const have = grads.get(input);
      grads.set(input, have ? g.node("Add", [have, reduced], [{ dtype: g.info(input).dtype, shape: g.shape(input) }])[0]! : reduced);
    });
  }
  // Marked forward values are recomputed where the backward pass reads them instead of being kept alive.
  recomputeInBackward(g, forward.length, dLoss);
  return new Map(wrt.map((w) => [w, grads.get(w) ?? null]));
}

/** A constant tensor of a float dtype filled with one value. */
export function constOf(dtype: DType, dims: number[], value: number): ConstTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (dtype === "float64") return { dtype, dims, data: new Float64Array(n).fill(value) };
  if (dtype === "float32") return { dtype, dims, data: new Float32Array(n).fill(value) };
  throw new Error(`constOf: unsupported dtype ${dtype}`);
}

/** Shape utilities shared by the walk and the rules, with per-graph caches. */
class ShapeHelpers {
  private readonly o: Ops;
  private readonly dimCache = new Map<string, string>();
  private readonly symbolSource = new Map<string, { input: string; axis: number }>();

  constructor(private readonly g: GraphBuilder) {
    this.o = new Ops(g);
    // Symbolic dimensions are resolved from graph inputs: inputs stay alive for the whole run, so reading their
    // shapes in the backward pass keeps no activation in memory (Shape(x) of an activation would).
    for (const name of g.inputs) {
      g.shape(name).forEach((d, axis) => {
        if (typeof d === "string" && !this.symbolSource.has(d)) this.symbolSource.set(d, { input: name, axis });
      });
    }
  }

  context(needs: boolean[], outputs: string[]): GradContext {
    const g = this.g;
    return {
      g, o: this.o, needs, outputs,
      scalar: (v, dtype) => g.constant(constOf(dtype, [], v), "s"),
      shapeTensor: (shape, like) => this.shapeTensor(shape, like),
      dimProduct: (dims, dtype) => this.dimProduct(dims, dtype),
      reshapeTo: (x, shape, like) => this.reshapeTo(x, shape, like),
      expandTo: (x, shape, like) => g.node("Expand", [x, this.shapeTensor(shape, like)], [{ dtype: g.info(x).dtype, shape }])[0]!,
      constInts: (name) => constInts(g, name),
      intAttr: (node, name, fallback) => intAttr(node.attrs[name], fallback),
    };
  }

  /** A [1] int64 tensor holding one dimension's runtime value, or undefined when it cannot be resolved. */
  private dim(d: number | string): string | undefined {
    const key = String(d);
    const cached = this.dimCache.get(key);
    if (cached) return cached;
    let value: string | undefined;
    if (typeof d === "number") value = this.g.i64([d]);
    else {
      const atoms = d.split("*");
      const parts: string[] = [];
      for (const atom of atoms) {
        if (/^\d+$/.test(atom)) { parts.push(this.g.i64([Number(atom)])); continue; }
        const src = this.symbolSource.get(atom);
        if (!src) return undefined;
        const shape = this.g.node("Shape", [src.input], [{ dtype: "int64", shape: [this.g.shape(src.input).length] }])[0]!;
        parts.push(this.g.node("Gather", [shape, this.g.i64([src.axis])], [{ dtype: "int64", shape: [1] }], { axis: 0 })[0]!);
      }
      value = parts.reduce((a, b) => this.g.node("Mul", [a, b], [{ dtype: "int64", shape: [1] }])[0]!);
    }
    this.dimCache.set(key, value);
    return value;
  }

  shapeTensor(shape: Shape, like?: string): string {
    if (shape.every((d) => typeof d === "number")) return this.g.i64(shape as number[]);
    const dims = shape.map((d) => this.dim(d));
    if (dims.every((d): d is string => d !== undefined)) {
      return this.g.node("Concat", dims, [{ dtype: "int64", shape: [shape.length] }], { axis: 0 })[0]!;
    }
    if (!like) throw new Error(`cannot resolve the runtime value of shape [${shape}]`);
    return this.g.node("Shape", [like], [{ dtype: "int64", shape: [shape.length] }])[0]!;
  }

  dimProduct(dims: Shape, dtype: DType): string {
    if (dims.every((d) => typeof d === "number")) {
      return this.g.constant(constOf(dtype, [], (dims as number[]).reduce((a, b) => a * b, 1)), "n");
    }
    const t = this.shapeTensor(dims);
    const prod = this.g.node("ReduceProd", [t], [{ dtype: "int64", shape: [] }], { keepdims: 0 })[0]!;
    return this.o.cast(prod, dtype);
  }

  reshapeTo(x: string, shape: Shape, like: string): string {
    const symbolic = shape.filter((d) => typeof d !== "number").length;
    const xs = this.g.shape(x);
    const info = { dtype: this.g.info(x).dtype, shape };
    // A static spec when at most one dimension is unknown (-1), or when unknown ones are copied in place (0).
    const spec: number[] = [];
    let unknown = 0;
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i]!;
      if (typeof d === "number") spec.push(d);
      else if (xs[i] === d && symbolic > 1) spec.push(0);
      else { spec.push(-1); unknown++; }
    }
    if (unknown <= 1) return this.g.node("Reshape", [x, this.g.i64(spec)], [info])[0]!;
    return this.g.node("Reshape", [x, this.shapeTensor(shape, like)], [info])[0]!;
  }

  /** Sums a gradient over the axes along which the input was broadcast, so it takes the input's shape. */
  reduceTo(d: string, target: Shape): string {
    const gs = this.g.shape(d);
    const lead = gs.length - target.length;
    if (lead < 0) throw new Error(`gradient of shape [${gs}] has lower rank than its input [${target}]`);
    const axes: number[] = [];
    for (let i = 0; i < gs.length; i++) {
      const t = i < lead ? undefined : target[i - lead];
      if (t === undefined || (t === 1 && gs[i] !== 1)) axes.push(i);
      else if (typeof t === "number" && typeof gs[i] === "number" && t !== gs[i]) {
        throw new Error(`gradient of shape [${gs}] does not broadcast to its input's shape [${target}]`);
      }
    }
    if (axes.length === 0) return d;
    const dtype = this.g.info(d).dtype;
    const kept = gs.map((dim, i) => (axes.includes(i) ? 1 : dim));
    let r = this.g.node("ReduceSum", [d, this.g.i64(axes)], [{ dtype, shape: kept }], { keepdims: 1 })[0]!;
    if (lead > 0) {
      r = this.g.node("Squeeze", [r, this.g.i64(Array.from({ length: lead }, (_, i) => i))], [{ dtype, shape: target }])[0]!;
    }
    return r;
  }
}

function constInts(g: GraphBuilder, name: string): number[] {
  const t = g.initializers.get(name);
  if (!t || "external" in t || !(t.data instanceof BigInt64Array)) throw new Error(`${name} is not an int64 constant`);
  return Array.from(t.data, Number);
}

function intAttr(v: AttrValue | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number") throw new Error(`attribute ${JSON.stringify(v)} is not an integer`);
  return v;
}
