/**
 * Independent plain-loop forward passes (float64, one unpadded sequence, no ONNX) of GPT-2 (GPT2LMHeadModel) and
 * the RoBERTa/BERT sequence classifiers, with LoRA added as PEFT does (s · (x Aᵀ) Bᵀ on the module's output).
 * They follow Hugging Face's modeling_gpt2 / modeling_roberta / modeling_bert literally.
 */
import { HfModel } from "../../extension/core/models/hfModel";
import { readTensorF32 } from "../../extension/core/io/safetensors";
import { LoraModule } from "../../extension/core/adapter/loraModule";

/** Output of a reference forward pass. */
export interface ArchReferenceOutput {
  /** GPT-2: [T, vocab]; encoders: [num_labels]. */
  logits: Float64Array;
  /** `${layer}.${module}` → per-token ||s·B·A·x||². */
  norms: Map<string, number[]>;
}

function weight(model: HfModel, name: string): Float64Array {
  const ref = model.weights.get(name);
  if (!ref) throw new Error(`missing ${name}`);
  // An adapter-saved head (withAdapterHead) is stored under its PEFT key: read the entry's own name.
  return Float64Array.from(readTensorF32(ref.index, ref.entry.name).data);
}

/** y[t, o] = Σ_i x[t, i] · W(o, i) + b[o], where W is [out, in] or (conv1d) [in, out]. */
function affine(x: Float64Array, T: number, inF: number, W: Float64Array, outF: number, b: Float64Array, conv1d: boolean): Float64Array {
  const y = new Float64Array(T * outF);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outF; o++) {
      let s = b[o]!;
      for (let i = 0; i < inF; i++) s += x[t * inF + i]! * (conv1d ? W[i * outF + o]! : W[o * inF + i]!);
      y[t * outF + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, T: number, H: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[t * H + i]!;
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[t * H + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = (x[t * H + i]! - mean) * inv * w[i]! + b[i]!;
  }
  return y;
}

/**
 * erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3···(2n+1)): every term is positive, so it is accurate to float64
 * for all x (no cancellation); beyond |x| = 6 erf is ±1 to within 1e-16.
 */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax, sum = ax;
  for (let n = 1; n < 500 && term > 1e-18 * sum; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** Self-attention over [T, nH·D] q/k/v, causal or bidirectional. */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, nH: number, D: number, causal: boolean): Float64Array {
  const H = nH * D;
  const out = new Float64Array(T * H);
  for (let h = 0; h < nH; h++) {
    for (let t = 0; t < T; t++) {
      const last = causal ? t : T - 1;
      const s: number[] = [];
      for (let u = 0; u <= last; u++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[t * H + h * D + d]! * k[u * H + h * D + d]!;
        s.push(dot / Math.sqrt(D));
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let u = 0; u <= last; u++) acc += (e[u]! / z) * v[u * H + h * D + d]!;
        out[t * H + h * D + d] = acc;
      }
    }
  }
  return out;
}

/** A linear/Conv1D module with its LoRA (if any) added, recording the LoRA output's per-token squared norm. */
function withLora(model: HfModel, loras: Map<string, LoraModule>, norms: Map<string, number[]>, layer: number, module: string,
  prefix: string, x: Float64Array, T: number, inF: number, outF: number, conv1d: boolean): Float64Array {
  const y = affine(x, T, inF, weight(model, `${prefix}.weight`), outF, weight(model, `${prefix}.bias`), conv1d);
  const l = loras.get(`${layer}.${module}`);
  if (!l) return y;
  const n: number[] = [];
  for (let t = 0; t < T; t++) {
    const ax = new Float64Array(l.r);
    for (let j = 0; j < l.r; j++) for (let i = 0; i < inF; i++) ax[j] += x[t * inF + i]! * l.A[j * inF + i]!;
    let sq = 0;
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let j = 0; j < l.r; j++) s += l.B[o * l.r + j]! * ax[j]!;
      s *= l.scale;
      y[t * outF + o] += s;
      sq += s * s;
    }
    n.push(sq);
  }
  norms.set(`${layer}.${module}`, n);
  return y;
}

/** GPT2LMHeadModel on one sequence. */
export function gpt2Reference(model: HfModel, loras: LoraModule[], ids: number[]): ArchReferenceOutput {
  const c = model.config, T = ids.length, H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize, eps = c.layerNormEps!;
  const byKey = new Map(loras.map((l) => [`${l.layer}.${l.module}`, l]));
  const norms = new Map<string, number[]>();
  const wte = weight(model, "transformer.wte.weight"), wpe = weight(model, "transformer.wpe.weight");
  let h: Float64Array = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) h[t * H + i] = wte[ids[t]! * H + i]! + wpe[t * H + i]!;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `transformer.h.${l}`;
    const x = layerNorm(h, T, H, weight(model, `${p}.ln_1.weight`), weight(model, `${p}.ln_1.bias`), eps);
    const qkv = withLora(model, byKey, norms, l, "attn.c_attn", `${p}.attn.c_attn`, x, T, H, 3 * H, true);
    const part = (j: number) => { const a = new Float64Array(T * H); for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) a[t * H + i] = qkv[t * 3 * H + j * H + i]!; return a; };
    const ctx = attention(part(0), part(1), part(2), T, c.numHeads, c.headDim, true);
    const a = withLora(model, byKey, norms, l, "attn.c_proj", `${p}.attn.c_proj`, ctx, T, H, H, true);
    h = h.map((v, i) => v + a[i]!);
    const x2 = layerNorm(h, T, H, weight(model, `${p}.ln_2.weight`), weight(model, `${p}.ln_2.bias`), eps);
    const up = withLora(model, byKey, norms, l, "mlp.c_fc", `${p}.mlp.c_fc`, x2, T, H, I, true)
      .map((u) => 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u ** 3))));
    const m = withLora(model, byKey, norms, l, "mlp.c_proj", `${p}.mlp.c_proj`, up, T, I, H, true);
    h = h.map((v, i) => v + m[i]!);
  }
  const hn = layerNorm(h, T, H, weight(model, "transformer.ln_f.weight"), weight(model, "transformer.ln_f.bias"), eps);
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) for (let v = 0; v < V; v++) {
    let s = 0;
    for (let i = 0; i < H; i++) s += hn[t * H + i]! * wte[v * H + i]!;
    logits[t * V + v] = s;
  }
  return { logits, norms };
}

/**
 * RobertaForSequenceClassification / BertForSequenceClassification on one sequence (no padding tokens in `ids`).
 * `head` replaces classifier tensors by name (the head-gradient check perturbs them).
 */
export function encoderReference(model: HfModel, loras: LoraModule[], ids: number[], head?: Map<string, Float64Array>, typeIds?: number[]): ArchReferenceOutput {
  const c = model.config, arch = c.architecture, T = ids.length, H = c.hiddenSize, I = c.intermediateSize, eps = c.layerNormEps!;
  const byKey = new Map(loras.map((l) => [`${l.layer}.${l.module}`, l]));
  const norms = new Map<string, number[]>();
  const e = `${arch}.embeddings`;
  const we = weight(model, `${e}.word_embeddings.weight`), pe = weight(model, `${e}.position_embeddings.weight`), te = weight(model, `${e}.token_type_embeddings.weight`);
  let h: Float64Array = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    // RoBERTa counts positions from padding_idx + 1.
    const pos = arch === "roberta" ? c.padTokenId! + 1 + t : t;
    // BERT's segment embedding of token t (RoBERTa: type 0 always).
    const type = arch === "bert" ? typeIds?.[t] ?? 0 : 0;
    for (let i = 0; i < H; i++) h[t * H + i] = we[ids[t]! * H + i]! + pe[pos * H + i]! + te[type * H + i]!;
  }
  h = layerNorm(h, T, H, weight(model, `${e}.LayerNorm.weight`), weight(model, `${e}.LayerNorm.bias`), eps);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${arch}.encoder.layer.${l}`;
    const lin = (x: Float64Array, m: string, inF: number, outF: number) => withLora(model, byKey, norms, l, m, `${p}.${m}`, x, T, inF, outF, false);
    const ctx = attention(lin(h, "attention.self.query", H, H), lin(h, "attention.self.key", H, H), lin(h, "attention.self.value", H, H), T, c.numHeads, c.headDim, false);
    const a = lin(ctx, "attention.output.dense", H, H);
    h = layerNorm(h.map((v, i) => v + a[i]!), T, H, weight(model, `${p}.attention.output.LayerNorm.weight`), weight(model, `${p}.attention.output.LayerNorm.bias`), eps);
    const inter = lin(h, "intermediate.dense", H, I).map((u) => 0.5 * u * (1 + erf(u / Math.SQRT2)));
    const o = lin(inter, "output.dense", I, H);
    h = layerNorm(h.map((v, i) => v + o[i]!), T, H, weight(model, `${p}.output.LayerNorm.weight`), weight(model, `${p}.output.LayerNorm.bias`), eps);
  }
  const first = h.slice(0, H);
  const L = c.numLabels!;
  const [d1, d2] = arch === "roberta" ? ["classifier.dense", "classifier.out_proj"] : ["bert.pooler.dense", "classifier"];
  const hw = (name: string) => head?.get(name) ?? weight(model, name);
  const pooled = affine(first, 1, H, hw(`${d1}.weight`), H, hw(`${d1}.bias`), false).map(Math.tanh);
  return { logits: affine(pooled, 1, H, hw(`${d2}.weight`), L, hw(`${d2}.bias`), false), norms };
}
