/**
 * GPT-2 with LoRA as an ONNX graph: learned absolute positions, pre-LayerNorm blocks, Conv1D weights stored
 * [in, out] (read by Gemm without a transposed copy), gelu_new, causal + key-padding attention and the lm_head tied
 * to the token embedding. The fused q/k/v projection `attn.c_attn` carries one LoRA on its 3·hidden output, as PEFT
 * puts it there (`target_modules: ["c_attn"]`, `fan_in_fan_out: true`).
 */
import { GraphBuilder } from "../onnx/builder";
import type { HfModel } from "./hfModel";
import { LoraDropError } from "../util/errors";
import { TOKENS, type ForwardGraph, type ForwardOptions, type LoraSlot } from "./forward";
import { ForwardBlocks } from "./blocks";

/** The weight-name root of a GPT-2 checkpoint: `transformer.` (GPT2LMHeadModel) or `` (GPT2Model, the original upload). */
export function gpt2Root(model: HfModel): string {
  if (model.weights.has("transformer.wte.weight")) return "transformer.";
  if (model.weights.has("wte.weight")) return "";
  throw new LoraDropError("TENSOR_MISSING", "weight transformer.wte.weight (or wte.weight) is missing from the checkpoint", model.dir, "transformer.wte.weight");
}

/** Builds the GPT-2 forward pass into `g`. The caller marks outputs. */
export function buildGpt2Forward(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: ForwardOptions): ForwardGraph {
  const cfg = model.config;
  const b = new ForwardBlocks(g, model, slots, opts);
  const { o, w } = b;
  const H = cfg.hiddenSize, nH = cfg.numHeads, D = cfg.headDim, I = cfg.intermediateSize, eps = cfg.layerNormEps ?? 1e-5;
  const root = gpt2Root(model);

  // Causal and key-padding mask as one additive bias [batch, 1, seq, seq].
  const pos = b.arange();
  const causal = g.node("LessOrEqual", [o.unsqueeze(pos, [0]), o.unsqueeze(pos, [1])], [{ dtype: "bool", shape: ["seq", "seq"] }])[0]!;
  const keyValid = o.unsqueeze(o.cast(b.attentionMask, "bool"), [1, 2]);
  const allowed = g.node("And", [causal, keyValid], [{ dtype: "bool", shape: ["batch", 1, "seq", "seq"] }])[0]!;
  const bias = o.where(allowed, g.f32(0), g.f32(-1e9));

  // Positions are 0…seq-1 for every row (right padding leaves real tokens where GPT-2 expects them).
  const words = w.embeddingRows(`${root}wte.weight`, [cfg.vocabSize, H], b.inputIds);
  const positions = w.embeddingRows(`${root}wpe.weight`, [cfg.maxPositions ?? 1024, H], pos);
  let h = o.reshape(o.add(words, positions), [-1, H], [TOKENS, H]);
  const numLayers = opts.numLayers ?? cfg.numLayers;
  for (let i = 0; i < numLayers; i++) {
    const p = `${root}h.${i}`;
    const qkv = b.linear(b.layerNorm(h, `${p}.ln_1`, H, eps), i, "attn.c_attn", `${p}.attn.c_attn`, H, 3 * H, true);
    const ctx = b.attention(o.slice(qkv, 1, 0, H), o.slice(qkv, 1, H, 2 * H), o.slice(qkv, 1, 2 * H, 3 * H), nH, D, bias);
    h = o.add(h, b.linear(ctx, i, "attn.c_proj", `${p}.attn.c_proj`, H, H, true));
    const up = b.linear(b.layerNorm(h, `${p}.ln_2`, H, eps), i, "mlp.c_fc", `${p}.mlp.c_fc`, H, I, true);
    h = o.add(h, b.linear(b.geluTanh(up), i, "mlp.c_proj", `${p}.mlp.c_proj`, I, H, true));
  }
  let logits: string | undefined;
  if (opts.logits) {
    const hn = b.layerNorm(opts.logitRows ? o.gather(h, opts.logitRows) : h, `${root}ln_f`, H, eps);
    const l2 = o.gemm(hn, w.weight(`${root}wte.weight`, [cfg.vocabSize, H]), { transB: true });
    logits = opts.logitRows ? l2 : b.unflatten(l2, [cfg.vocabSize]);
  }
  return b.finish(logits);
}
