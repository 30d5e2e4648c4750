/**
 * The graph of one streamed block: `k` consecutive decoder layers whose weights are graph inputs with
 * layer-independent names (`w<j>.self_attn.q_proj.weight` for the block's j-th layer), so one compiled session
 * serves every block of the same shape. Hidden states come in and go out as [batch*seq, hidden].
 */
import { GraphBuilder } from "../onnx/builder";
import { buildDecoderLayer, buildLayerContext } from "../models/llama";
import { ModelConfig } from "../models/config";
import { LoraSlot } from "../models/forward";

/** One weight input of a block graph. */
export interface BlockWeightInput {
  /** Index of the layer within the block. */
  local: number;
  /** The weight's name without `model.layers.<i>.`, e.g. `self_attn.q_proj.weight`. */
  suffix: string;
  name: string;
  shape: number[];
}

/** Names of a block graph's values. */
export interface BlockGraph {
  hidden: string;
  attentionMask: string;
  hiddenOut: string;
  /** [n_taps, batch, seq] when the block has LoRA modules; taps in `tapOrder` with block-local layers. */
  loraNorms?: string;
  tapOrder: { layer: number; module: string }[];
  weights: BlockWeightInput[];
  /** LoRA inputs, keyed by `<local>.<module>` (each module gets its own pair; shared LoRA is fed twice). */
  loraInputs: { param: string; A: string; B: string; r: number; inFeatures: number; outFeatures: number }[];
}

/** The block-local LoRA slots of layers [start, start+k): layers renumbered from 0, one param per module. */
export function blockSlots(slots: LoraSlot[], start: number, k: number): LoraSlot[] {
  return slots.filter((s) => s.layer >= start && s.layer < start + k)
    .map((s) => ({ ...s, layer: s.layer - start, param: `${s.layer - start}.${s.module}` }));
}

/** A key equal for blocks that can share one compiled session: layer count and LoRA layout (ranks, scales). */
export function blockKey(local: LoraSlot[], k: number): string {
  const parts = [...local].sort((a, b) => a.layer - b.layer || a.module.localeCompare(b.module))
    .map((s) => `${s.layer}.${s.module}:${s.r}:${s.scale}`);
  return `${k}|${parts.join(",")}`;
}

/** Builds the block graph for `k` layers with the given block-local LoRA slots. */
export function buildBlockGraph(g: GraphBuilder, cfg: ModelConfig, local: LoraSlot[], k: number, loraNorms: boolean): BlockGraph {
  const hidden = g.input("hidden", "float32", ["batch*seq", cfg.hiddenSize]);
  const attentionMask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const ctx = buildLayerContext(g, cfg, attentionMask, local, { logits: false, loraNorms });
  const weights: BlockWeightInput[] = [];
  let h = hidden;
  for (let j = 0; j < k; j++) {
    const bound = new Map<string, string>();
    h = buildDecoderLayer(g, ctx, j, h, (suffix, shape) => {
      let v = bound.get(suffix);
      if (!v) {
        v = g.input(`w${j}.${suffix}`, "float32", shape);
        bound.set(suffix, v);
        weights.push({ local: j, suffix, name: v, shape });
      }
      return v;
    });
  }
  const hiddenOut = g.node("Identity", [h], [{ dtype: "float32", shape: ["batch*seq", cfg.hiddenSize] }])[0]!;
  const out: BlockGraph = { hidden, attentionMask, hiddenOut, tapOrder: ctx.lora.tapOrder, weights, loraInputs: ctx.lora.loraInputs };
  const stacked = ctx.lora.stackedTaps(ctx.bsShape);
  if (stacked) out.loraNorms = stacked;
  return out;
}

const weightLists = new Map<string, BlockWeightInput[]>();
/** The weight inputs of a block of `k` layers (the same whatever its LoRA layout). */
export function blockWeightInputs(cfg: ModelConfig, k: number): BlockWeightInput[] {
  const key = `${JSON.stringify(cfg)}|${k}`;
  let list = weightLists.get(key);
  if (!list) {
    list = buildBlockGraph(new GraphBuilder(), cfg, [], k, false).weights;
    weightLists.set(key, list);
  }
  return list;
}
