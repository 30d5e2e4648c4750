/**
 * Typed helpers over GraphBuilder: one function per ONNX op we use, each computing its output's symbolic shape.
 * Models are written with these; the autodiff (gradients.ts) writes its backward nodes with them too.
 */
import { DType, Dim, GraphBuilder, Shape, AttrValue } from "./builder";

/** Numpy-style broadcast of two symbolic shapes. */
export function broadcastShapes(a: Shape, b: Shape, what = "broadcast"): Shape {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new Error(`${what}: shapes [${a}] and [${b}] do not broadcast`);
  }
  return out;
}

/** Normalises a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Op helpers bound to one builder. */
export class Ops {
  constructor(readonly g: GraphBuilder) {}

  private unary(op: string, x: string, attrs: Record<string, AttrValue> = {}): string {
    return this.g.node(op, [x], [this.g.info(x)], attrs)[0]!;
  }

  private binary(op: string, a: string, b: string): string {
    const ia = this.g.info(a);
    const ib = this.g.info(b);
    if (ia.dtype !== ib.dtype) throw new Error(`${op}: dtypes ${ia.dtype} and ${ib.dtype} differ`);
    return this.g.node(op, [a, b], [{ dtype: ia.dtype, shape: broadcastShapes(ia.shape, ib.shape, op) }])[0]!;
  }

  /** a + b (broadcasting). */
  add(a: string, b: string): string { return this.binary("Add", a, b); }
  /** a - b (broadcasting). */
  sub(a: string, b: string): string { return this.binary("Sub", a, b); }
  /** a * b (broadcasting). */
  mul(a: string, b: string): string { return this.binary("Mul", a, b); }
  /** a / b (broadcasting). */
  div(a: string, b: string): string { return this.binary("Div", a, b); }
  /** -x. */
  neg(x: string): string { return this.unary("Neg", x); }
  /** sqrt(x). */
  sqrt(x: string): string { return this.unary("Sqrt", x); }
  /** 1/x. */
  reciprocal(x: string): string { return this.unary("Reciprocal", x); }
  /** exp(x). */
  exp(x: string): string { return this.unary("Exp", x); }
  /** log(x). */
  log(x: string): string { return this.unary("Log", x); }
  /** 1/(1+exp(-x)). */
  sigmoid(x: string): string { return this.unary("Sigmoid", x); }
  /** tanh(x). */
  tanh(x: string): string { return this.unary("Tanh", x); }
  /** erf(x). */
  erf(x: string): string { return this.unary("Erf", x); }
  /** A copy of x (used to give a value a second name). */
  identity(x: string): string { return this.unary("Identity", x); }
  /** softmax along an axis. */
  softmax(x: string, axis = -1): string { return this.unary("Softmax", x, { axis }); }
  /** log-softmax along an axis. */
  logSoftmax(x: string, axis = -1): string { return this.unary("LogSoftmax", x, { axis }); }

  /** Batched matrix product with broadcasting over leading dims: [..., M, K] @ [..., K, N]. */
  matmul(a: string, b: string): string {
    const sa = this.g.shape(a);
    const sb = this.g.shape(b);
    if (sa.length < 2 || sb.length < 2) throw new Error(`MatMul: ranks ${sa.length}, ${sb.length} < 2`);
    const k1 = sa[sa.length - 1];
    const k2 = sb[sb.length - 2];
    if (k1 !== k2) throw new Error(`MatMul: inner dims ${k1} and ${k2} differ ([${sa}] @ [${sb}])`);
    const lead = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2), "MatMul");
    const shape = [...lead, sa[sa.length - 2]!, sb[sb.length - 1]!];
    return this.g.node("MatMul", [a, b], [{ dtype: this.g.info(a).dtype, shape }])[0]!;
  }

  /** 2-D general matrix product: alpha·A'·B' (+ C), with optional transposes. */
  gemm(a: string, b: string, opts: { transA?: boolean; transB?: boolean; c?: string; alpha?: number } = {}): string {
    const sa = this.g.shape(a);
    const sb = this.g.shape(b);
    if (sa.length !== 2 || sb.length !== 2) throw new Error(`Gemm: needs 2-D inputs, got [${sa}] and [${sb}]`);
    const [m, k1] = opts.transA ? [sa[1]!, sa[0]!] : [sa[0]!, sa[1]!];
    const [k2, n] = opts.transB ? [sb[1]!, sb[0]!] : [sb[0]!, sb[1]!];
    if (k1 !== k2) throw new Error(`Gemm: inner dims ${k1} and ${k2} differ`);
    const attrs: Record<string, AttrValue> = {};
    if (opts.transA) attrs.transA = 1;
    if (opts.transB) attrs.transB = 1;
    if (opts.alpha !== undefined && opts.alpha !== 1) attrs.alpha = { float: opts.alpha };
    const inputs = opts.c ? [a, b, opts.c] : [a, b];
    return this.g.node("Gemm", inputs, [{ dtype: this.g.info(a).dtype, shape: [m, n] }], attrs)[0]!;
  }

  /** Reshape to `target` (the symbolic result shape), using `spec` as ONNX's shape tensor (0 = copy, -1 = infer). */
  reshape(x: string, spec: number[], target: Shape): string {
    return this.g.node("Reshape", [x, this.g.i64(spec)], [{ dtype: this.g.info(x).dtype, shape: target }])[0]!;
  }

  /** Reshape to the runtime shape of another value (used by gradients). */
  reshapeLike(x: string, like: string): string {
    const shape = this.g.node("Shape", [like], [{ dtype: "int64", shape: [this.g.shape(like).length] }])[0]!;
    return this.g.node("Reshape", [x, shape], [{ dtype: this.g.info(x).dtype, shape: this.g.shape(like) }])[0]!;
  }

  /** Permutes axes. */
  transpose(x: string, perm: number[]): string {
    const s = this.g.shape(x);
    if (perm.length !== s.length) throw new Error(`Transpose: perm [${perm}] for rank ${s.length}`);
    return this.g.node("Transpose", [x], [{ dtype: this.g.info(x).dtype, shape: perm.map((p) => s[p]!) }], { perm })[0]!;
  }

  private reduce(op: string, x: string, axes: number[], keepdims: boolean): string {
    const s = this.g.shape(x);
    const ax = axes.map((a) => normAxis(a, s.length));
    const shape = keepdims ? s.map((d, i) => (ax.includes(i) ? 1 : d)) : s.filter((_, i) => !ax.includes(i));
    return this.g.node(op, [x, this.g.i64(ax)], [{ dtype: this.g.info(x).dtype, shape }], { keepdims: keepdims ? 1 : 0 })[0]!;
  }

  /** Sum over axes. */
  reduceSum(x: string, axes: number[], keepdims = true): string { return this.reduce("ReduceSum", x, axes, keepdims); }
  /** Mean over axes. */
  reduceMean(x: string, axes: number[], keepdims = true): string { return this.reduce("ReduceMean", x, axes, keepdims); }
  /** Sum of squares over axes. */
  reduceSumSquare(x: string, axes: number[], keepdims = true): string { return this.reduce("ReduceSumSquare", x, axes, keepdims); }
  /** Max over axes. */
  reduceMax(x: string, axes: number[], keepdims = true): string { return this.reduce("ReduceMax", x, axes, keepdims); }

  /** Rows of `data` (axis 0) picked by integer `indices`. */
  gather(data: string, indices: string, axis = 0): string {
    const sd = this.g.shape(data);
    const si = this.g.shape(indices);
    const a = normAxis(axis, sd.length);
    const shape = [...sd.slice(0, a), ...si, ...sd.slice(a + 1)];
    return this.g.node("Gather", [data, indices], [{ dtype: this.g.info(data).dtype, shape }], { axis: a })[0]!;
  }

  /** Concatenation along an axis. */
  concat(xs: string[], axis: number): string {
    const shapes = xs.map((x) => this.g.shape(x));
    const rank = shapes[0]!.length;
    const a = normAxis(axis, rank);
    const shape = [...shapes[0]!];
    const parts = shapes.map((s) => s[a]!);
    shape[a] = parts.every((p) => typeof p === "number")
      ? (parts as number[]).reduce((x, y) => x + y, 0)
      : parts.join("+");
    return this.g.node("Concat", xs, [{ dtype: this.g.info(xs[0]!).dtype, shape }], { axis: a })[0]!;
  }

  /** Static slice [start, end) along one axis. */
  slice(x: string, axis: number, start: number, end: number): string {
    const s = this.g.shape(x);
    const a = normAxis(axis, s.length);
    const shape = [...s];
    shape[a] = end - start;
    return this.g.node("Slice", [x, this.g.i64([start]), this.g.i64([end]), this.g.i64([a])],
      [{ dtype: this.g.info(x).dtype, shape }])[0]!;
  }

  /** Inserts size-1 axes. */
  unsqueeze(x: string, axes: number[]): string {
    const s = [...this.g.shape(x)];
    const rank = s.length + axes.length;
    const ax = axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q);
    for (const a of ax) s.splice(a, 0, 1);
    return this.g.node("Unsqueeze", [x, this.g.i64(ax)], [{ dtype: this.g.info(x).dtype, shape: s }])[0]!;
  }

  /** Element type conversion. */
  cast(x: string, to: DType): string {
    const codes: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16, uint8: 2, int8: 3 };
    return this.g.node("Cast", [x], [{ dtype: to, shape: this.g.shape(x) }], { to: codes[to] })[0]!;
  }

  /** cond ? a : b (broadcasting). */
  where(cond: string, a: string, b: string): string {
    const shape = broadcastShapes(broadcastShapes(this.g.shape(cond), this.g.shape(a)), this.g.shape(b));
    return this.g.node("Where", [cond, a, b], [{ dtype: this.g.info(a).dtype, shape }])[0]!;
  }

  /** Expands x to the runtime shape of `like` (broadcasting). */
  expandLike(x: string, like: string): string {
    const shape = this.g.node("Shape", [like], [{ dtype: "int64", shape: [this.g.shape(like).length] }])[0]!;
    return this.g.node("Expand", [x, shape], [{ dtype: this.g.info(x).dtype, shape: broadcastShapes(this.g.shape(x), this.g.shape(like)) }])[0]!;
  }
}
