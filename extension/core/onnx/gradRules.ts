/**
 * The vector-Jacobian product of every ONNX op the models differentiate through, one rule per op (see
 * autodiff.ts for the walk that applies them). A rule returns one gradient per input, null where the input needs
 * none (ctx.needs) or is not differentiable (indices, shapes, conditions); a gradient may keep the broadcast
 * shape of the output, since the walk reduces it to the input's shape. Rules reuse forward outputs (y = σ(x),
 * softmax, 1/√…) rather than recomputing, so only those activations stay alive for the backward pass.
 */
import type { DType, GraphBuilder, GraphNode, Shape } from "./builder";
import type { Ops } from "./ops";

/** What a gradient rule may use: the builder, op helpers and shape utilities bound to the graph being built. */
export interface GradContext {
  g: GraphBuilder;
  o: Ops;
  /** needs[i]: input i of the node being differentiated wants a gradient (rules skip the others). */
  needs: boolean[];
  /** The node's output values (so rules can reuse y = f(x) instead of recomputing it). */
  outputs: string[];
  /** A scalar constant of a dtype. */
  scalar(value: number, dtype: DType): string;
  /** A runtime int64 shape tensor for a symbolic shape, built from graph inputs' shapes (keeps no activation alive). */
  shapeTensor(shape: Shape, fallbackLike?: string): string;
  /** A float scalar equal to the product of some dims (static or resolved at runtime from the inputs' shapes). */
  dimProduct(dims: Shape, dtype: DType): string;
  /** Reshapes x to a symbolic shape, with a static spec where possible. */
  reshapeTo(x: string, shape: Shape, like: string): string;
  /** Broadcasts x to a symbolic shape. */
  expandTo(x: string, shape: Shape, like: string): string;
  /** The integer values of a constant input (axes, starts…); throws when the input is computed at runtime. */
  constInts(name: string): number[];
  /** Reads an attribute as a number (with a default). */
  intAttr(node: GraphNode, name: string, fallback: number): number;
}

/**
 * A gradient rule: given the node and the gradient of each of its outputs (null where none reaches it), returns
 * one gradient per input (null where the input needs none or is not differentiable). A returned gradient may have
 * the broadcast (output) shape; the walk reduces it to the input's shape.
 */
export type GradRule = (ctx: GradContext, node: GraphNode, gradOutputs: (string | null)[]) => (string | null)[];

const get = (d: (string | null)[]): string => {
  const v = d[0];
  if (!v) throw new Error("gradient rule called without an output gradient");
  return v;
};

/** Swaps the last two axes. */
function transposeLast2(ctx: GradContext, x: string): string {
  const r = ctx.g.shape(x).length;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ctx.o.transpose(x, perm);
}

/** Reduction axes of a Reduce* node (input 1 in opset 18), normalised; all axes when absent. */
function reduceAxes(ctx: GradContext, node: GraphNode): number[] {
  const rank = ctx.g.shape(node.inputs[0]!).length;
  const axesInput = node.inputs[1];
  if (!axesInput) {
    if (ctx.intAttr(node, "noop_with_empty_axes", 0)) throw new Error(`${node.op} with noop_with_empty_axes is not differentiable here`);
    return Array.from({ length: rank }, (_, i) => i);
  }
  return ctx.constInts(axesInput).map((a) => (a < 0 ? a + rank : a));
}

/** The output gradient of a reduction broadcast back to the input's shape. */
function unreduce(ctx: GradContext, node: GraphNode, dy: string): string {
  const x = node.inputs[0]!;
  const axes = reduceAxes(ctx, node);
  const keep = ctx.intAttr(node, "keepdims", 1);
  const d = keep ? dy : ctx.o.unsqueeze(dy, axes);
  return ctx.expandTo(d, ctx.g.shape(x), x);
}

/** Zeros of a value's shape and dtype (its shape resolved from the graph inputs where possible). */
function zerosLike(c: GradContext, x: string): string {
  const info = c.g.info(x);
  return c.g.node("ConstantOfShape", [c.shapeTensor(info.shape, x)], [info],
    { value: { tensor: { dtype: info.dtype, dims: [1], data: info.dtype === "float64" ? Float64Array.of(0) : Float32Array.of(0) } } })[0]!;
}

/** A float attribute (`{float}`) or a default. */
function floatAttr(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  if (v === undefined) return fallback;
  if (typeof v === "object" && !Array.isArray(v) && "float" in v) return v.float;
  if (typeof v === "number") return v;
  throw new Error(`${node.op}: attribute ${name} is not a float`);
}

/** The rule table: op type → vector-Jacobian product. */
export const GRAD_RULES: Record<string, GradRule> = {
  Identity: (_c, _n, d) => [get(d)],
  Add: (_c, _n, d) => [get(d), get(d)],
  Sub: (c, _n, d) => [get(d), c.needs[1] ? c.o.neg(get(d)) : null],
  Mul: (c, n, d) => [
    c.needs[0] ? c.o.mul(get(d), n.inputs[1]!) : null,
    c.needs[1] ? c.o.mul(get(d), n.inputs[0]!) : null,
  ],
  // y = a / b: da = dy / b, db = -dy·y / b.
  Div: (c, n, d) => [
    c.needs[0] ? c.o.div(get(d), n.inputs[1]!) : null,
    c.needs[1] ? c.o.neg(c.o.div(c.o.mul(get(d), c.outputs[0]!), n.inputs[1]!)) : null,
  ],
  Neg: (c, _n, d) => [c.o.neg(get(d))],
  // y = √x: dx = dy / (2y).
  Sqrt: (c, _n, d) => [c.o.div(c.o.mul(get(d), c.scalar(0.5, c.g.info(get(d)).dtype)), c.outputs[0]!)],
  // y = 1/x: dx = -dy·y².
  Reciprocal: (c, _n, d) => { const y = c.outputs[0]!; return [c.o.neg(c.o.mul(get(d), c.o.mul(y, y)))]; },
  Exp: (c, _n, d) => [c.o.mul(get(d), c.outputs[0]!)],
  Log: (c, n, d) => [c.o.div(get(d), n.inputs[0]!)],
  // y = σ(x): dx = dy·y·(1-y).
  Sigmoid: (c, _n, d) => {
    const y = c.outputs[0]!;
    return [c.o.mul(get(d), c.o.mul(y, c.o.sub(c.scalar(1, c.g.info(y).dtype), y)))];
  },
  // y = erf(x): dx = dy·(2/√π)·e^(−x²) (BERT's exact GELU).
  Erf: (c, n, d) => {
    const x = n.inputs[0]!;
    return [c.o.mul(get(d), c.o.mul(c.scalar(2 / Math.sqrt(Math.PI), c.g.info(x).dtype), c.o.exp(c.o.neg(c.o.mul(x, x)))))];
  },
  // y = tanh(x): dx = dy·(1-y²).
  Tanh: (c, _n, d) => {
    const y = c.outputs[0]!;
    return [c.o.mul(get(d), c.o.sub(c.scalar(1, c.g.info(y).dtype), c.o.mul(y, y)))];
  },
  Cast: (c, n, d) => {
    const from = c.g.info(n.inputs[0]!).dtype;
    if (from !== "float32" && from !== "float64" && from !== "float16" && from !== "bfloat16") return [null];
    return [c.o.cast(get(d), from)];
  },
  // y = softmax(x): dx = y·(dy - Σ dy·y).
  Softmax: (c, n, d) => {
    const y = c.outputs[0]!;
    const axis = c.intAttr(n, "axis", -1);
    const t = c.o.mul(get(d), y);
    return [c.o.sub(t, c.o.mul(y, c.o.reduceSum(t, [axis], true)))];
  },
  // y = log softmax(x): dx = dy - exp(y)·Σ dy.
  LogSoftmax: (c, n, d) => {
    const y = c.outputs[0]!;
    const axis = c.intAttr(n, "axis", -1);
    return [c.o.sub(get(d), c.o.mul(c.o.exp(y), c.o.reduceSum(get(d), [axis], true)))];
  },
  // Batched matmul: dA = dY·Bᵀ, dB = Aᵀ·dY (broadcast batch axes are summed by the walk).
  MatMul: (c, n, d) => [
    c.needs[0] ? c.o.matmul(get(d), transposeLast2(c, n.inputs[1]!)) : null,
    c.needs[1] ? c.o.matmul(transposeLast2(c, n.inputs[0]!), get(d)) : null,
  ],
  // Y = α·A'·B' + C with A' = transA ? Aᵀ : A (and B' likewise).
  Gemm: (c, n, d) => {
    const dy = get(d);
    const [a, b] = [n.inputs[0]!, n.inputs[1]!];
    const tA = c.intAttr(n, "transA", 0) === 1;
    const tB = c.intAttr(n, "transB", 0) === 1;
    const alpha = floatAttr(n, "alpha", 1);
    if (floatAttr(n, "beta", 1) !== 1) throw new Error("Gemm with beta ≠ 1 is not differentiable here");
    const dA = !c.needs[0] ? null
      : !tA ? c.o.gemm(dy, b, { transB: !tB, alpha })
      : c.o.gemm(b, dy, { transA: tB, transB: true, alpha });
    const dB = !c.needs[1] ? null
      : !tB ? c.o.gemm(a, dy, { transA: !tA, alpha })
      : c.o.gemm(dy, a, { transA: true, transB: tA, alpha });
    return n.inputs.length > 2 ? [dA, dB, c.needs[2] ? dy : null] : [dA, dB];
  },
  Reshape: (c, n, d) => [c.reshapeTo(get(d), c.g.shape(n.inputs[0]!), n.inputs[0]!), null],
  Unsqueeze: (c, n, d) => [c.reshapeTo(get(d), c.g.shape(n.inputs[0]!), n.inputs[0]!), null],
  Squeeze: (c, n, d) => [c.reshapeTo(get(d), c.g.shape(n.inputs[0]!), n.inputs[0]!), ...n.inputs.slice(1).map(() => null)],
  Transpose: (c, n, d) => {
    const perm = n.attrs.perm as number[];
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => { inverse[p] = i; });
    return [c.o.transpose(get(d), inverse)];
  },
  // Expand broadcasts: the walk sums the gradient back to the input's shape.
  Expand: (_c, _n, d) => [get(d), null],
  ReduceSum: (c, n, d) => [unreduce(c, n, get(d)), ...n.inputs.slice(1).map(() => null)],
  ReduceMean: (c, n, d) => {
    const x = n.inputs[0]!;
    const xs = c.g.shape(x);
    const count = c.dimProduct(reduceAxes(c, n).map((a) => xs[a]!), c.g.info(x).dtype);
    return [c.o.div(unreduce(c, n, get(d)), count), ...n.inputs.slice(1).map(() => null)];
  },
  // y = Σ x²: dx = 2x·dy.
  ReduceSumSquare: (c, n, d) => {
    const x = n.inputs[0]!;
    return [c.o.mul(unreduce(c, n, get(d)), c.o.mul(x, c.scalar(2, c.g.info(x).dtype))), ...n.inputs.slice(1).map(() => null)];
  },
  // Static slices (step 1): the gradient is the output gradient padded with zeros back to the input's extent.
  Slice: (c, n, d) => {
    const x = n.inputs[0]!;
    const xs = c.g.shape(x);
    const starts = c.constInts(n.inputs[1]!);
    const ends = c.constInts(n.inputs[2]!);
    const axes = n.inputs[3] ? c.constInts(n.inputs[3]) : starts.map((_, i) => i);
    if (n.inputs[4] && c.constInts(n.inputs[4]).some((s) => s !== 1)) throw new Error("Slice with steps ≠ 1 is not differentiable here");
    const pads = new Array<number>(2 * xs.length).fill(0);
    axes.forEach((axRaw, i) => {
      const ax = axRaw < 0 ? axRaw + xs.length : axRaw;
      const dim = xs[ax]!;
      const toEnd = ends[i]! >= 2 ** 31 - 1;
      if (typeof dim !== "number" && (starts[i]! < 0 || ends[i]! < 0 || !toEnd)) {
        throw new Error(`Slice over the symbolic axis ${ax} (${dim}) is not differentiable here`);
      }
      const size = typeof dim === "number" ? dim : Infinity;
      const s = Math.min(starts[i]! < 0 ? starts[i]! + size : starts[i]!, size);
      const e = toEnd ? size : Math.min(ends[i]! < 0 ? ends[i]! + size : ends[i]!, size);
      pads[ax] = s;
      pads[xs.length + ax] = toEnd ? 0 : size - e;
    });
    const dx = c.g.node("Pad", [get(d), c.g.i64(pads)], [{ dtype: c.g.info(x).dtype, shape: xs }], { mode: "constant" })[0]!;
    return [dx, ...n.inputs.slice(1).map(() => null)];
  },
  // Concat: split the output gradient into the inputs' extents along the axis (static extents).
  Concat: (c, n, d) => {
    const axis = c.intAttr(n, "axis", 0);
    const shapes = n.inputs.map((i) => c.g.shape(i));
    const rank = shapes[0]!.length;
    const ax = axis < 0 ? axis + rank : axis;
    const sizes = shapes.map((s) => s[ax]!);
    if (!sizes.every((s): s is number => typeof s === "number")) throw new Error("Concat along a symbolic axis is not differentiable here");
    const outs = c.g.node("Split", [get(d), c.g.i64(sizes)], shapes.map((s) => ({ dtype: c.g.info(n.inputs[0]!).dtype, shape: s })), { axis: ax });
    return outs.map((o, i) => (c.needs[i] ? o : null));
  },
  Where: (c, n, d) => {
    const dy = get(d);
    const zero = c.scalar(0, c.g.info(dy).dtype);
    return [null, c.needs[1] ? c.o.where(n.inputs[0]!, dy, zero) : null, c.needs[2] ? c.o.where(n.inputs[0]!, zero, dy) : null];
  },
  // Gathered rows (axis 0) scatter back, adding where an index repeats, into zeros of the data's shape.
  Gather: (c, n, d) => {
    const [data, indices] = [n.inputs[0]!, n.inputs[1]!];
    if (c.intAttr(n, "axis", 0) !== 0) throw new Error("Gather along an axis other than 0 is not differentiable here");
    const info = c.g.info(data);
    const idx = c.o.unsqueeze(indices, [-1]);
    const dx = c.g.node("ScatterND", [zerosLike(c, data), idx, get(d)], [info], { reduction: "add" })[0]!;
    return [dx, null];
  },
  // Gathered elements scatter back (adding, in case an index repeats) into zeros of the data's shape.
  GatherElements: (c, n, d) => {
    const [data, indices] = [n.inputs[0]!, n.inputs[1]!];
    const axis = c.intAttr(n, "axis", 0);
    const dx = c.g.node("ScatterElements", [zerosLike(c, data), indices, get(d)], [c.g.info(data)], { axis, reduction: "add" })[0]!;
    return [dx, null];
  },
};
