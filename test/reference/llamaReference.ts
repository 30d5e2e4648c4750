/**
 * An independent, straightforward Llama-family forward pass with LoRA in plain loops (float64, one sequence at a
 * time, no padding, no ONNX). Tests compare the ONNX graphs against it. It follows Hugging Face's modeling_llama
 * literally: RMSNorm, rotate_half RoPE, repeat_kv for GQA, SwiGLU, LoRA added as PEFT does (x @ Aᵀ @ Bᵀ · s).
 */
import { HfModel } from "../../extension/core/models/hfModel";
import { readTensorF32 } from "../../extension/core/io/safetensors";
import { ropeInvFreq } from "../../extension/core/models/llama";
import { LoraModule } from "../../extension/core/adapter/loraModule";

type Mat = Float64Array; // row-major

function weight(model: HfModel, name: string): Float64Array {
  const ref = model.weights.get(name);
  if (!ref) throw new Error(`missing ${name}`);
  return Float64Array.from(readTensorF32(ref.index, name).data);
}

function maybe(model: HfModel, name: string): Float64Array | undefined {
  return model.weights.has(name) ? weight(model, name) : undefined;
}

/** y[t, o] = Σ_i x[t, i] W[o, i] (+ b[o]). */
function linear(x: Mat, T: number, inF: number, W: Float64Array, outF: number, b?: Float64Array): Mat {
  const y = new Float64Array(T * outF);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[t * inF + i]! * W[o * inF + i]!;
      y[t * outF + o] = s;
    }
  }
  return y;
}

function rmsNorm(x: Mat, T: number, H: number, w: Float64Array, eps: number): Mat {
  const y = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let i = 0; i < H; i++) ms += x[t * H + i]! ** 2;
    const inv = 1 / Math.sqrt(ms / H + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = x[t * H + i]! * inv * w[i]!;
  }
  return y;
}

/** Output of the reference forward pass for one sequence. */
export interface ReferenceOutput {
  /** [T, vocab]. */
  logits: Float64Array;
  /** `${layer}.${module}` → per-token ||s·B·A·x||². */
  norms: Map<string, number[]>;
}

/** Runs one unpadded sequence through the model with LoRA. */
export function referenceForward(model: HfModel, loras: LoraModule[], ids: number[]): ReferenceOutput {
  const c = model.config;
  const T = ids.length, H = c.hiddenSize, D = c.headDim, nH = c.numHeads, nKV = c.numKvHeads;
  const loraAt = new Map(loras.map((l) => [`${l.layer}.${l.module}`, l]));
  const norms = new Map<string, number[]>();
  const embed = weight(model, "model.embed_tokens.weight");
  let h = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) h[t * H + i] = embed[ids[t]! * H + i]!;

  const proj = (x: Mat, layer: number, parent: string, module: string, inF: number, outF: number): Mat => {
    const p = `model.layers.${layer}.${parent}.${module}`;
    const y = linear(x, T, inF, weight(model, `${p}.weight`), outF, maybe(model, `${p}.bias`));
    const l = loraAt.get(`${layer}.${module}`);
    if (!l) return y;
    const ax = linear(x, T, inF, Float64Array.from(l.A), l.r);
    const bax = linear(ax, T, l.r, Float64Array.from(l.B), outF);
    const n: number[] = [];
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let o = 0; o < outF; o++) {
        const v = l.scale * bax[t * outF + o]!;
        y[t * outF + o] += v;
        s += v * v;
      }
      n.push(s);
    }
    norms.set(`${layer}.${module}`, n);
    return y;
  };

  const inv = ropeInvFreq(c);
  const rope = (x: Mat, heads: number) => {
    for (let t = 0; t < T; t++) {
      for (let hd = 0; hd < heads; hd++) {
        const base = t * heads * D + hd * D;
        const orig = x.slice(base, base + D);
        for (let j = 0; j < D; j++) {
          const f = t * inv[j % (D / 2)]!;
          const rot = j < D / 2 ? -orig[j + D / 2]! : orig[j - D / 2]!;
          x[base + j] = orig[j]! * Math.cos(f) + rot * Math.sin(f);
        }
      }
    }
  };

  for (let layer = 0; layer < c.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const x = rmsNorm(h, T, H, weight(model, `${p}.input_layernorm.weight`), c.rmsNormEps);
    const q = proj(x, layer, "self_attn", "q_proj", H, nH * D);
    const k = proj(x, layer, "self_attn", "k_proj", H, nKV * D);
    const v = proj(x, layer, "self_attn", "v_proj", H, nKV * D);
    rope(q, nH);
    rope(k, nKV);
    const attn = new Float64Array(T * nH * D);
    const group = nH / nKV;
    for (let hd = 0; hd < nH; hd++) {
      const kvh = Math.floor(hd / group);
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[i * nH * D + hd * D + d]! * k[j * nKV * D + kvh * D + d]!;
          scores.push(s / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += (e[j]! / z) * v[j * nKV * D + kvh * D + d]!;
          attn[i * nH * D + hd * D + d] = s;
        }
      }
    }
    const o = proj(attn, layer, "self_attn", "o_proj", nH * D, H);
    for (let i = 0; i < T * H; i++) h[i] += o[i]!;
    const x2 = rmsNorm(h, T, H, weight(model, `${p}.post_attention_layernorm.weight`), c.rmsNormEps);
    const gate = proj(x2, layer, "mlp", "gate_proj", H, c.intermediateSize);
    const up = proj(x2, layer, "mlp", "up_proj", H, c.intermediateSize);
    const act = new Float64Array(T * c.intermediateSize);
    for (let i = 0; i < act.length; i++) act[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
    const down = proj(act, layer, "mlp", "down_proj", c.intermediateSize, H);
    for (let i = 0; i < T * H; i++) h[i] += down[i]!;
  }
  const hn = rmsNorm(h, T, H, weight(model, "model.norm.weight"), c.rmsNormEps);
  const head = c.tieWordEmbeddings ? embed : weight(model, "lm_head.weight");
  return { logits: linear(hn, T, H, head, c.vocabSize), norms };
}
