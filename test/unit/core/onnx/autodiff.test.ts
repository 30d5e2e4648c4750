/**
 * Every gradient rule's vector-Jacobian product against central finite differences. Each test builds a tiny graph
 * around one op, L = Σ op(x)·W with a fixed random W, appends the backward pass, runs it in onnxruntime-node in
 * float64 (the CPU EP has float64 kernels for every op used here) and compares each gradient entry with
 * (L(x + h·e_i) - L(x - h·e_i)) / 2h computed by the same session. In float64 with h = 1e-5 the difference
 * quotient is accurate to ~1e-9 for these smooth ops, so a 1e-6 relative tolerance can only fail on a wrong rule.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type * as Ort from "onnxruntime-node";
import { GraphBuilder, Shape } from "../../../../extension/core/onnx/builder";
import { Ops } from "../../../../extension/core/onnx/ops";
import { buildBackward } from "../../../../extension/core/onnx/autodiff";
import { GRAD_RULES } from "../../../../extension/core/onnx/gradRules";
import { ort } from "../../../../extension/core/runtime/session";
import { Rng } from "../../../../extension/core/util/random";

interface InputSpec {
  shape: Shape;
  /** Concrete dims fed at run time (defaults to `shape` when it is static). */
  dims?: number[];
  /** Values (default: standard normals). */
  data?: number[];
  /** Differentiate with respect to this input (default true). */
  wrt?: boolean;
  dtype?: "float64" | "int64" | "bool";
}

const rng = new Rng(1234);

async function checkOp(name: string, specs: InputSpec[], build: (o: Ops, g: GraphBuilder, x: string[]) => string, positive = false): Promise<void> {
  const g = new GraphBuilder("float64");
  const o = new Ops(g);
  const names = specs.map((s, i) => g.input(`x${i}`, s.dtype ?? "float64", s.shape));
  const y = build(o, g, names);
  const ys = g.shape(y);
  const yDims = ys.map((d, i) => (typeof d === "number" ? d : resolve(d, i)));
  function resolve(sym: string, axis: number): number {
    return sym.split("*").reduce((prod, atom) => {
      const s = specs.find((sp) => sp.shape.includes(atom));
      if (!s) throw new Error(`${name}: cannot size output axis ${axis} (${sym})`);
      return prod * s.dims![s.shape.indexOf(atom)]!;
    }, 1);
  }
  // W is fed as an input so that symbolic output shapes work.
  const wIn = g.input("w", "float64", ys);
  const loss = o.reduceSum(o.mul(y, wIn), Array.from({ length: ys.length }, (_, i) => i), false);
  const wrt = names.filter((_, i) => (specs[i]!.wrt ?? true) && (specs[i]!.dtype ?? "float64") === "float64");
  const grads = buildBackward(g, loss, wrt);
  g.output(loss);
  for (const w of wrt) {
    const d = grads.get(w);
    assert.ok(d, `${name}: no gradient for ${w}`);
    g.output(d!);
  }
  const rt = ort();
  const session = await rt.InferenceSession.create(g.toBytes(), { executionProviders: ["cpu"], logSeverityLevel: 3 });
  try {
    const values = specs.map((s) => {
      const dims = s.dims ?? (s.shape as number[]);
      const n = dims.reduce((a, b) => a * b, 1);
      const data = s.data ?? Array.from({ length: n }, () => (positive ? 0.5 + rng.next() : rng.normal()));
      return { dims, data };
    });
    const wData = Float64Array.from({ length: yDims.reduce((a, b) => a * b, 1) }, () => rng.normal());
    const feeds = (override?: { input: number; index: number; delta: number }): Record<string, Ort.Tensor> => {
      const f: Record<string, Ort.Tensor> = { w: new rt.Tensor("float64", wData, yDims) };
      values.forEach((v, i) => {
        const dt = specs[i]!.dtype ?? "float64";
        if (dt === "int64") f[names[i]!] = new rt.Tensor("int64", BigInt64Array.from(v.data.map(BigInt)), v.dims);
        else if (dt === "bool") f[names[i]!] = new rt.Tensor("bool", Uint8Array.from(v.data), v.dims);
        else {
          const data = Float64Array.from(v.data);
          if (override && override.input === i) data[override.index]! += override.delta;
          f[names[i]!] = new rt.Tensor("float64", data, v.dims);
        }
      });
      return f;
    };
    const base = await session.run(feeds());
    const h = 1e-5;
    for (const w of wrt) {
      const i = names.indexOf(w);
      const got = base[grads.get(w)!]!.data as Float64Array;
      assert.equal(got.length, values[i]!.data.length, `${name}: gradient of ${w} has the input's size`);
      for (let k = 0; k < got.length; k++) {
        const plus = (await session.run(feeds({ input: i, index: k, delta: h })))[loss]!.data[0] as number;
        const minus = (await session.run(feeds({ input: i, index: k, delta: -h })))[loss]!.data[0] as number;
        const fd = (plus - minus) / (2 * h);
        const err = Math.abs(got[k]! - fd) / (Math.abs(fd) + 1e-4);
        assert.ok(err < 1e-6, `${name}: d/d${w}[${k}] = ${got[k]} but finite differences give ${fd}`);
      }
    }
  } finally {
    await session.release();
  }
}

const S23: InputSpec = { shape: [2, 3] };

test("Add, Sub, Mul, Div with broadcasting", async () => {
  await checkOp("Add", [{ shape: [2, 3] }, { shape: [3] }], (o, _g, [a, b]) => o.add(a!, b!));
  await checkOp("Sub", [{ shape: [2, 1] }, { shape: [2, 3] }], (o, _g, [a, b]) => o.sub(a!, b!));
  await checkOp("Mul", [{ shape: [2, 3, 4] }, { shape: [3, 1] }], (o, _g, [a, b]) => o.mul(a!, b!));
  await checkOp("Mul same input", [S23], (o, _g, [a]) => o.mul(a!, a!));
  await checkOp("Div", [{ shape: [2, 3] }, { shape: [1, 3] }], (o, _g, [a, b]) => o.div(a!, b!), true);
});

test("unary ops: Neg, Sqrt, Reciprocal, Exp, Log, Sigmoid, Tanh, Identity", async () => {
  await checkOp("Neg", [S23], (o, _g, [a]) => o.neg(a!));
  await checkOp("Sqrt", [S23], (o, _g, [a]) => o.sqrt(a!), true);
  await checkOp("Reciprocal", [S23], (o, _g, [a]) => o.reciprocal(a!), true);
  await checkOp("Exp", [S23], (o, _g, [a]) => o.exp(a!));
  await checkOp("Log", [S23], (o, _g, [a]) => o.log(a!), true);
  await checkOp("Sigmoid", [S23], (o, _g, [a]) => o.sigmoid(a!));
  await checkOp("Tanh", [S23], (o, _g, [a]) => o.tanh(a!));
  await checkOp("Identity", [S23], (o, _g, [a]) => o.identity(a!));
});

test("Softmax and LogSoftmax", async () => {
  await checkOp("Softmax", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.softmax(a!, -1));
  await checkOp("Softmax axis 1", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.softmax(a!, 1));
  await checkOp("LogSoftmax", [{ shape: [3, 5] }], (o, _g, [a]) => o.logSoftmax(a!, -1));
});

test("MatMul with broadcast batch axes (grouped-query attention layout)", async () => {
  await checkOp("MatMul 2-D", [{ shape: [2, 3] }, { shape: [3, 4] }], (o, _g, [a, b]) => o.matmul(a!, b!));
  await checkOp("MatMul broadcast", [{ shape: [2, 2, 3, 4] }, { shape: [2, 1, 4, 3] }], (o, _g, [a, b]) => o.matmul(a!, b!));
  await checkOp("MatMul rank 3 @ 2", [{ shape: [2, 3, 4] }, { shape: [4, 2] }], (o, _g, [a, b]) => o.matmul(a!, b!));
});

test("Gemm with every transpose combination, alpha and a broadcast bias", async () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const sa = transA ? [4, 3] : [3, 4];
      const sb = transB ? [5, 4] : [4, 5];
      await checkOp(`Gemm tA=${transA} tB=${transB}`, [{ shape: sa }, { shape: sb }, { shape: [5] }],
        (o, _g, [a, b, c]) => o.gemm(a!, b!, { transA, transB, alpha: 0.7, c }));
    }
  }
});

test("Reshape, Transpose, Unsqueeze, Squeeze, Expand, with symbolic dims", async () => {
  await checkOp("Reshape", [{ shape: ["batch", 6], dims: [2, 6] }], (o, _g, [a]) => o.reshape(a!, [0, 2, 3], ["batch", 2, 3]));
  await checkOp("Reshape merge", [{ shape: ["batch", "seq", 4], dims: [2, 3, 4] }], (o, _g, [a]) => o.reshape(a!, [-1, 4], ["batch*seq", 4]));
  await checkOp("Transpose", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.transpose(a!, [2, 0, 1]));
  await checkOp("Unsqueeze", [S23], (o, _g, [a]) => o.unsqueeze(a!, [0, 3]));
  await checkOp("Squeeze", [{ shape: [2, 1, 3] }], (_o, g, [a]) => g.node("Squeeze", [a!, g.i64([1])], [{ dtype: "float64", shape: [2, 3] }])[0]!);
  await checkOp("Expand", [{ shape: [3, 1] }, { shape: [2, 3, 4], wrt: false }], (o, _g, [a, like]) => o.expandLike(a!, like!));
});

test("ReduceSum, ReduceMean, ReduceSumSquare (keepdims on and off, symbolic axis)", async () => {
  await checkOp("ReduceSum", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.reduceSum(a!, [1], true));
  await checkOp("ReduceSum no keepdims", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.reduceSum(a!, [0, 2], false));
  await checkOp("ReduceMean", [{ shape: [2, 3, 4] }], (o, _g, [a]) => o.reduceMean(a!, [-1], true));
  await checkOp("ReduceMean symbolic", [{ shape: ["batch", "seq", 3], dims: [2, 4, 3] }], (o, _g, [a]) => o.reduceMean(a!, [1], false));
  await checkOp("ReduceSumSquare", [{ shape: [2, 3] }], (o, _g, [a]) => o.reduceSumSquare(a!, [1], false));
});

test("Slice and Concat (rotary embedding's rotate-half)", async () => {
  await checkOp("Slice", [{ shape: [2, 6] }], (o, _g, [a]) => o.slice(a!, -1, 1, 4));
  await checkOp("Slice symbolic rows", [{ shape: ["n", 4], dims: [3, 4] }], (o, _g, [a]) => o.slice(a!, 1, 2, 4));
  await checkOp("Concat", [{ shape: [2, 3] }, { shape: [2, 2] }, { shape: [2, 1], wrt: false }], (o, _g, [a, b, c]) => o.concat([a!, b!, c!], 1));
  await checkOp("rotate half", [{ shape: [2, 4] }], (o, _g, [x]) => o.concat([o.neg(o.slice(x!, -1, 2, 4)), o.slice(x!, -1, 0, 2)], -1));
});

test("Where, Cast, Gather (rows, with a repeated index) and GatherElements", async () => {
  await checkOp("Gather", [{ shape: ["n", 3], dims: [4, 3] }, { shape: ["rows"], dims: [3], dtype: "int64", data: [2, 0, 2] }],
    (o, _g, [a, idx]) => o.gather(a!, idx!));
  await checkOp("Where", [{ shape: [2, 3], dtype: "bool", data: [1, 0, 1, 0, 0, 1] }, { shape: [2, 3] }, { shape: [3] }],
    (o, _g, [c, a, b]) => o.where(c!, a!, b!));
  // A float64 → float64 Cast: a round trip through float32 would make the difference quotient itself inexact.
  await checkOp("Cast", [S23], (o, _g, [a]) => o.cast(a!, "float64"));
  await checkOp("GatherElements", [{ shape: [2, 4] }, { shape: [2, 3], dtype: "int64", data: [0, 3, 3, 1, 1, 2] }],
    (_o, g, [a, idx]) => g.node("GatherElements", [a!, idx!], [{ dtype: "float64", shape: [2, 3] }], { axis: 1 })[0]!);
});

test("a composite (RMSNorm then SiLU-gated product) differentiates through shared inputs", async () => {
  await checkOp("rmsnorm-swiglu", [{ shape: [3, 4] }, { shape: [4] }], (o, g, [x, w]) => {
    const ms = o.reduceMean(o.mul(x!, x!), [-1]);
    const inv = o.reciprocal(o.sqrt(o.add(ms, g.constant({ dtype: "float64", dims: [], data: Float64Array.of(1e-6) }))));
    const n = o.mul(o.mul(x!, inv), w!);
    return o.mul(o.mul(n, o.sigmoid(n)), x!);
  });
});

test("frozen inputs get no gradient and no product; unknown ops and non-scalar losses are refused", () => {
  const g = new GraphBuilder();
  const o = new Ops(g);
  const x = g.input("x", "float32", [2, 3]);
  const w = g.input("w", "float32", [4, 3]);
  const a = g.input("a", "float32", [1, 3]);
  const y = o.gemm(x, w, { transB: true });
  const z = o.gemm(x, a, { transB: true });
  const loss = o.reduceSum(o.mul(y, o.expandLike(z, y)), [0, 1], false);
  const before = g.nodes.length;
  const grads = buildBackward(g, loss, ["a"]);
  assert.ok(grads.get("a"));
  const gemms = g.nodes.slice(before).filter((n) => n.op === "Gemm");
  // dz (from the Mul) and da = dzᵀ·x: no gradient flows to x or w, which are not differentiated.
  assert.ok(gemms.every((n) => !n.outputs.some((out) => g.shape(out).join() === "4,3")), "no dW product for the frozen weight");
  assert.equal(gemms.length, 1);

  const g2 = new GraphBuilder();
  const o2 = new Ops(g2);
  const p = g2.input("p", "float32", [3]);
  // Hardmax is piecewise constant: it has no gradient worth a rule.
  const s = o2.reduceSum(g2.node("Hardmax", [p], [{ dtype: "float32", shape: [3] }])[0]!, [0], true);
  assert.throws(() => buildBackward(g2, s, ["p"]), /no gradient rule for Hardmax/);
  assert.throws(() => buildBackward(g2, p, ["p"]), /must be a scalar/);
  assert.ok(Object.keys(GRAD_RULES).length >= 25);
});
