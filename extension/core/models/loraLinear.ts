/**
 * The one LoRA linear layer every architecture uses: the frozen projection, plus s·B·A·x when a LoRA is slotted
 * at that (layer, module), plus, for profiling, the per-token ‖s·B·A·x‖² tap, and, for training, a dropout mask
 * on x before A. LoRA parameters are graph inputs (`lora.<param>.A` [r, in], `lora.<param>.B` [out, r]); a shared
 * LoRA is one input pair fed to several modules, so the autodiff sums its gradients.
 */
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import type { ForwardGraph, ForwardOptions, LoraInput, LoraSlot } from "./forward";
import { TOKENS } from "./forward";
import { matMulNBits, type AccuracyLevel, type QuantizedWeightValues } from "../quant/quantLinear";

/** A projection's stored weight: a float32 graph value, or quantized values multiplied by MatMulNBits. */
export type ProjectionWeight = string | { quantized: QuantizedWeightValues; accuracyLevel: AccuracyLevel };

/** How the stored weight of a projection is laid out and multiplied. */
export interface ProjectionLayout {
  /** The stored weight is [in, out] (GPT-2's Conv1D) instead of PyTorch's [out, in]. */
  conv1d?: boolean;
  /** MatMul over the transposed weight instead of Gemm(transB) (see ForwardOptions.linearAsMatMul). */
  asMatMul?: boolean;
}

/**
 * x·Wᵀ (+ bias) for a stored weight `w`: one Gemm that reads a float32 weight in place, or one MatMulNBits over a
 * quantized one (always [out, in]: a Conv1D weight was transposed when it was quantized, so `layout` does not apply).
 */
export function projection(o: Ops, x: string, w: ProjectionWeight, bias: string | undefined, layout: ProjectionLayout = {}): string {
  if (typeof w !== "string") return matMulNBits(o.g, x, w.quantized, w.accuracyLevel, bias);
  if (layout.conv1d) return o.gemm(x, w, { transB: false, c: bias });
  if (!layout.asMatMul) return o.gemm(x, w, { transB: true, c: bias });
  const y = o.matmul(x, o.transpose(w, [1, 0]));
  return bias ? o.add(y, bias) : y;
}

/** The LoRA inputs, slots and taps of one forward build. */
export class LoraLinears {
  readonly loraInputs: LoraInput[] = [];
  readonly tapOrder: ForwardGraph["tapOrder"] = [];
  readonly dropoutInputs: ForwardGraph["dropoutInputs"] = [];
  private readonly taps: string[] = [];
  private readonly params = new Map<string, { A: string; B: string }>();
  private readonly slotAt: Map<string, LoraSlot>;

  /** Creates one input pair per distinct param; `maskF` is the float [batch*seq] token mask (zeros at padding). */
  constructor(private readonly g: GraphBuilder, private readonly o: Ops, slots: LoraSlot[], private readonly opts: ForwardOptions, private readonly maskF: string) {
    for (const s of slots) {
      const first = this.loraInputs.find((l) => l.param === s.param);
      if (first) {
        if (first.r !== s.r || first.inFeatures !== s.inFeatures || first.outFeatures !== s.outFeatures) throw new Error(`shared LoRA ${s.param} is used by modules of different shapes`);
        continue;
      }
      const A = g.input(`lora.${s.param}.A`, "float32", [s.r, s.inFeatures]);
      const B = g.input(`lora.${s.param}.B`, "float32", [s.outFeatures, s.r]);
      this.params.set(s.param, { A, B });
      this.loraInputs.push({ param: s.param, A, B, r: s.r, inFeatures: s.inFeatures, outFeatures: s.outFeatures });
    }
    this.slotAt = new Map(slots.map((s) => [`${s.layer}.${s.module}`, s]));
  }

  /** `y` plus the LoRA of (layer, module) applied to `x` [batch*seq, inF], when one is slotted there; else `y`. */
  add(x: string, y: string, layer: number, module: string, inF: number): string {
    const slot = this.slotAt.get(`${layer}.${module}`);
    if (!slot) return y;
    const { g, o } = this;
    const p = this.params.get(slot.param)!;
    let xin = x;
    if (this.opts.loraDropout) {
      const name = g.input(`dropout.${layer}.${module}`, "float32", [TOKENS, inF]);
      this.dropoutInputs.push({ layer, module, name, inFeatures: inF });
      xin = o.mul(x, name);
    }
    const lora = o.gemm(o.gemm(xin, p.A, { transB: true }), p.B, { transB: true, alpha: slot.scale });
    const out = o.add(y, lora);
    if (this.opts.loraNorms) {
      this.taps.push(o.mul(o.reduceSumSquare(lora, [1], false), this.maskF));
      this.tapOrder.push({ layer, module });
    }
    return out;
  }

  /** The taps stacked into [n_taps, batch, seq] (`bsShape`: the runtime [batch, seq]), or undefined when none. */
  stackedTaps(bsShape: string): string | undefined {
    if (!this.opts.loraNorms || !this.taps.length) return undefined;
    const { g, o } = this;
    const stacked = o.concat(this.taps.map((t) => o.unsqueeze(t, [0])), 0);
    const shape = g.node("Concat", [g.i64([this.taps.length]), bsShape], [{ dtype: "int64", shape: [3] }], { axis: 0 })[0]!;
    return g.node("Reshape", [stacked, shape], [{ dtype: "float32", shape: [this.taps.length, "batch", "seq"] }])[0]!;
  }
}
