/**
 * Binds a model's safetensors weights into a graph as external initializers that point at their byte offsets
 * in the shard files, so weights never pass through JavaScript. F16/BF16 weights are cast to float32 in the graph.
 * Projection weights quantized for the run (quantizedWeights.ts) are bound from their cache files instead.
 */
import { GraphBuilder, DType } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { HfModel, WeightRef } from "./hfModel";
import { LoraDropError } from "../util/errors";
import { quantizedExternal, type QuantizedWeights, type QuantizedWeightValues } from "../quant/quantLinear";
import type { ProjectionWeight } from "./loraLinear";

const ST_TO_DTYPE: Record<string, DType> = { F32: "float32", F16: "float16", BF16: "bfloat16", F64: "float64" };

/** The file name under which shard `i` is made visible to the session (see session.ts). */
export function shardLocation(i: number): string {
  return `shard${i}.safetensors`;
}

/** Resolves HF weight names to float32 graph values, creating each initializer once. */
export class WeightBinder {
  private bound = new Map<string, string>();
  private storedInits = new Map<string, string>();
  private boundQuantized = new Map<string, QuantizedWeightValues>();

  constructor(private readonly g: GraphBuilder, private readonly model: HfModel, private readonly quantized?: QuantizedWeights) {}

  /** Whether the checkpoint has this tensor. */
  has(name: string): boolean {
    return this.model.weights.has(name);
  }

  /**
   * A projection's weight as loraLinear.ts's `projection` multiplies it: the quantized values when the run
   * quantized this weight, else the float32 value. `shape` is the stored shape ([out, in], or a Conv1D's [in, out]).
   */
  projectionWeight(name: string, shape: number[]): ProjectionWeight {
    const q = this.quantized?.tensors.get(name);
    if (!q) return this.weight(name, shape);
    checkShape(this.model.weights.get(name)!, name, shape);
    const bound = this.boundQuantized.get(name) ?? quantizedExternal(this.g, q.ref, q.location);
    this.boundQuantized.set(name, bound);
    return { quantized: bound, accuracyLevel: this.quantized!.accuracyLevel };
  }

  /** The float32 graph value for a weight, checking its shape. */
  weight(name: string, shape: number[]): string {
    const done = this.bound.get(name);
    if (done) return done;
    const { init, dtype } = this.stored(name, shape);
    const value = dtype === "float32" ? init : new Ops(this.g).cast(init, "float32");
    this.bound.set(name, value);
    return value;
  }

  /**
   * Rows `indices` of an embedding table as float32. A float16/bfloat16 table is gathered in its stored dtype and
   * only the gathered rows are cast: casting the whole table would be folded by onnxruntime into a float32 copy
   * held in memory (0.5 GB for a 7B model's embeddings), while the stored table stays memory-mapped.
   */
  embeddingRows(name: string, shape: number[], indices: string): string {
    const o = new Ops(this.g);
    const { init, dtype } = this.stored(name, shape);
    return dtype === "float32" ? o.gather(init, indices) : o.cast(o.gather(init, indices), "float32");
  }

  /** The weight's initializer in its stored dtype (external data in its shard), created once. */
  private stored(name: string, shape: number[]): { init: string; dtype: DType } {
    const ref = this.model.weights.get(name);
    if (!ref) throw new LoraDropError("TENSOR_MISSING", `weight ${name} is missing from the checkpoint`, this.model.dir, name);
    checkShape(ref, name, shape);
    const dtype = ST_TO_DTYPE[ref.entry.dtype];
    if (!dtype) throw new LoraDropError("SAFETENSORS_BAD_DTYPE", `weight ${name} has dtype ${ref.entry.dtype}; expected F32, F16 or BF16`, ref.index.file, name);
    const done = this.storedInits.get(name);
    if (done) return { init: done, dtype };
    const shard = this.model.shards.indexOf(ref.index);
    const init = this.g.external(`w.${name}`, {
      dtype, dims: ref.entry.shape,
      external: { location: shardLocation(shard), offset: ref.index.dataStart + ref.entry.begin, length: ref.entry.end - ref.entry.begin },
    });
    this.storedInits.set(name, init);
    return { init, dtype };
  }
}

function checkShape(ref: WeightRef, name: string, shape: number[]): void {
  const s = ref.entry.shape;
  if (s.length !== shape.length || s.some((d, i) => d !== shape[i])) {
    throw new LoraDropError("SAFETENSORS_SHAPE_MISMATCH", `weight ${name} has shape [${s}] but config.json implies [${shape}]`, ref.index.file, name);
  }
}
