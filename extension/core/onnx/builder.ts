/**
 * A small ONNX graph builder. It records nodes in order (the autodiff walks this list in reverse), tracks a
 * symbolic shape for every value so errors are caught at build time and broadcast gradients can be reduced
 * statically, and serialises to an ONNX ModelProto with the `onnx-proto` package.
 *
 * Shapes are lists of dimensions; a dimension is a number or a symbol (a string such as "batch" or "seq").
 * Symbolic products are written "batch*seq".
 */
import { onnx } from "onnx-proto";

/** Element types the builder knows. */
export type DType = "float32" | "float16" | "bfloat16" | "int64" | "int32" | "bool" | "float64" | "uint8" | "int8";
/** A dimension: a known size or a symbolic one. */
export type Dim = number | string;
/** A shape. */
export type Shape = Dim[];
/** An attribute value. */
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: ConstTensor };

/** One recorded node. */
export interface GraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  domain: string;
}

/** A constant with its data in memory. */
export interface ConstTensor {
  dtype: DType;
  dims: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array;
}

/** An initializer whose bytes live in an external file (a safetensors file, at a byte offset). */
export interface ExternalTensor {
  dtype: DType;
  dims: number[];
  external: { location: string; offset: number; length: number };
}

/** The metadata of one value in the graph. */
export interface ValueInfo {
  dtype: DType;
  shape: Shape;
}

const ONNX_DTYPE: Record<DType, number> = {
  float32: 1, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16, uint8: 2, int8: 3,
};
const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8, bfloat16: 2, uint8: 1, int8: 1,
};

/** Bytes per element of a dtype. */
export function dtypeBytes(d: DType): number {
  return DTYPE_BYTES[d];
}

/** Records an ONNX graph. */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly values = new Map<string, ValueInfo>();
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  readonly initializers = new Map<string, ConstTensor | ExternalTensor>();
  /**
   * Forward values a backward pass recomputes from their producers' inputs instead of keeping them alive from the
   * forward pass (see onnx/recompute.ts): large outputs of cheap ops, such as attention probabilities or SiLU.
   */
  readonly recomputed = new Set<string>();
  /** Names of values that are frozen (initializers and everything computed only from them and constants). */
  private counter = 0;

  constructor(readonly floatType: DType = "float32") {}

  /** A fresh, deterministic value name. */
  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Shape): string {
    this.define(name, { dtype, shape });
    this.inputs.push(name);
    return name;
  }

  /** Marks a value as a graph output. */
  output(name: string): void {
    if (!this.values.has(name)) throw new Error(`graph output ${name} is not defined`);
    this.outputs.push(name);
  }

  /** Adds an initializer held in memory. */
  constant(data: ConstTensor, hint = "const"): string {
    const expected = data.dims.reduce((a, b) => a * b, 1);
    const actual = data.data.length;
    if (expected !== actual) throw new Error(`constant ${hint}: ${actual} elements for shape [${data.dims}]`);
    const name = this.fresh(hint);
    this.initializers.set(name, data);
    this.define(name, { dtype: data.dtype, shape: [...data.dims] });
    return name;
  }

  /** Adds an initializer whose bytes live in an external file. */
  external(name: string, t: ExternalTensor): string {
    const expected = t.dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (expected !== t.external.length) {
      throw new Error(`initializer ${name}: ${t.external.length} bytes for ${t.dtype} [${t.dims}]`);
    }
    this.initializers.set(name, t);
    this.define(name, { dtype: t.dtype, shape: [...t.dims] });
    return name;
  }

  /** A float32 scalar or vector constant. */
  f32(values: number | number[], dims?: number[]): string {
    const arr = typeof values === "number" ? [values] : values;
    return this.constant({ dtype: "float32", dims: dims ?? (typeof values === "number" ? [] : [arr.length]), data: Float32Array.from(arr) }, "f");
  }

  /** An int64 vector constant (shapes, axes). */
  i64(values: number[]): string {
    return this.constant({ dtype: "int64", dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) }, "i");
  }

  /** Marks values for recomputation in a backward pass (a graph without one ignores the marks); returns the first. */
  recompute(...names: string[]): string {
    for (const n of names) {
      if (!this.values.has(n)) throw new Error(`recompute: unknown value ${n}`);
      this.recomputed.add(n);
    }
    return names[0]!;
  }

  /** Marks for recomputation the outputs of every node recorded since node index `start` (a cheap sub-computation). */
  recomputeSince(start: number): void {
    for (const n of this.nodes.slice(start)) this.recompute(...n.outputs);
  }

  /** Metadata of a value. */
  info(name: string): ValueInfo {
    const v = this.values.get(name);
    if (!v) throw new Error(`unknown value ${name}`);
    return v;
  }

  /** Shape of a value. */
  shape(name: string): Shape {
    return this.info(name).shape;
  }

  /** Records a node whose output metadata the caller supplies. Returns the output names. */
  node(op: string, inputs: string[], outInfo: ValueInfo[], attrs: Record<string, AttrValue> = {}, domain = ""): string[] {
    for (const i of inputs) if (i !== "" && !this.values.has(i)) throw new Error(`${op}: unknown input ${i}`);
    const outputs = outInfo.map((info) => {
      const name = this.fresh(op.toLowerCase());
      this.define(name, info);
      return name;
    });
    this.nodes.push({ op, inputs, outputs, attrs, domain });
    return outputs;
  }

  private define(name: string, info: ValueInfo): void {
    if (this.values.has(name)) throw new Error(`value ${name} defined twice`);
    this.values.set(name, info);
  }

  /** Serialises the graph to ONNX bytes. */
  toBytes(opset = 18, graphName = "lora_drop"): Uint8Array {
    const T = onnx.TensorProto;
    const valueInfo = (name: string): onnx.IValueInfoProto => {
      const v = this.info(name);
      return {
        name,
        type: {
          tensorType: {
            elemType: ONNX_DTYPE[v.dtype],
            shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
          },
        },
      };
    };
    const initializer: onnx.ITensorProto[] = [];
    for (const [name, t] of this.initializers) {
      if ("external" in t) {
        initializer.push({
          name, dims: t.dims, dataType: ONNX_DTYPE[t.dtype], dataLocation: T.DataLocation.EXTERNAL,
          externalData: [
            { key: "location", value: t.external.location },
            { key: "offset", value: String(t.external.offset) },
            { key: "length", value: String(t.external.length) },
          ],
        });
      } else {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        initializer.push({ name, dims: t.dims, dataType: ONNX_DTYPE[t.dtype], rawData: bytes });
      }
    }
    const node: onnx.INodeProto[] = this.nodes.map((n, i) => ({
      name: `n${i}_${n.op}`,
      opType: n.op,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.keys(n.attrs).sort().map((k) => encodeAttr(k, n.attrs[k]!)),
    }));
    const model: onnx.IModelProto = {
      irVersion: 9,
      producerName: "lora-drop",
      opsetImport: [{ domain: "", version: opset }, { domain: "com.microsoft", version: 1 }],
      graph: {
        name: graphName,
        node,
        initializer,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

function encodeAttr(name: string, v: AttrValue): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: A.INT, i: v };
  if (typeof v === "string") return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ("float" in v) return { name, type: A.FLOAT, f: v.float };
  if ("floats" in v) return { name, type: A.FLOATS, floats: v.floats };
  const t = v.tensor;
  return {
    name, type: A.TENSOR,
    t: { dims: t.dims, dataType: ONNX_DTYPE[t.dtype], rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) },
  };
}
