/**
 * Per-architecture naming: where a layer's weights live in Hugging Face checkpoints, which Linear modules PEFT can
 * put a LoRA on, and their shapes. The Llama family keeps its short module ids (q_proj, …) for compatibility with
 * existing profiles; GPT-2 and the encoders use the module's path inside the layer (attn.c_attn,
 * attention.self.query, …) as its id, because their short names are ambiguous (GPT-2 has two c_proj, BERT three
 * dense). PEFT's list-form target_modules still match by suffix, so `["query", "value"]` or `["c_attn"]` work.
 */
import { LoraDropError } from "../util/errors";
import type { Architecture, ModelConfig } from "./config";

/** How sentence pairs are tokenised: through the tokenizer's pair template, or joined into one text. */
export type PairEncoding = "pair" | "join";

/** The LoRA-targetable linear modules of a Llama-family decoder layer, in forward order. */
export const DECODER_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
/** GPT-2 module ids (Conv1D layers), in layer order. */
export const GPT2_MODULES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"] as const;
/** RoBERTa/BERT module ids, in layer order. */
export const ENCODER_MODULES = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"] as const;

/** The Linear modules of one layer of an architecture, in forward order. */
export function archModules(arch: Architecture): readonly string[] {
  if (arch === "gpt2") return GPT2_MODULES;
  if (arch === "roberta" || arch === "bert") return ENCODER_MODULES;
  return DECODER_MODULES;
}

/** PEFT's default LoRA targets for an architecture (the Llama family: the caller's default). */
export function defaultTargets(arch: Architecture, llamaDefault: string[]): string[] {
  if (arch === "gpt2") return ["c_attn"];
  if (isEncoder(arch)) return ["query", "value"];
  return llamaDefault;
}

/** Whether a PEFT target_modules entry names a module id of the architecture (exactly, or as its last path parts). */
export function targetMatches(arch: Architecture, target: string): boolean {
  return archModules(arch).some((m) => m === target || m.endsWith(`.${target}`));
}

/**
 * Longest sequence the model's learned position table covers (RoBERTa's positions start at padding_idx + 1), or
 * undefined for rotary models. Examples are truncated to it, as tokenizers truncate to model_max_length.
 */
export function positionLimit(cfg: ModelConfig): number | undefined {
  if (cfg.maxPositions === undefined) return undefined;
  return cfg.architecture === "roberta" ? cfg.maxPositions - (cfg.padTokenId ?? 1) - 1 : cfg.maxPositions;
}

/** The tokens per example to keep: `requested`, at most the model's position limit. */
export function tokensFor(cfg: ModelConfig, requested: number): number {
  return Math.min(requested, positionLimit(cfg) ?? requested);
}

/** How sentence pairs are tokenised for a model: through the tokenizer's pair template for encoders, joined for decoders. */
export function pairEncoding(cfg: ModelConfig): PairEncoding {
  return isEncoder(cfg.architecture) ? "pair" : "join";
}

/** The architectures built by models/llama.ts (the only ones layer streaming, segments and recomputeUp cover). */
export const LLAMA_FAMILY = ["llama", "mistral", "qwen2"] as const;

/** Whether an architecture is one of LLAMA_FAMILY. */
export function isLlamaFamily(arch: string): boolean {
  return (LLAMA_FAMILY as readonly string[]).includes(arch);
}

/** Whether an architecture is a bidirectional encoder with a classification head. */
export function isEncoder(arch: Architecture): boolean {
  return arch === "roberta" || arch === "bert";
}

/** The checkpoint prefix of layer `i` (no trailing dot), e.g. `roberta.encoder.layer.3`. */
export function layerPrefix(arch: Architecture, layer: number, gpt2Root = "transformer."): string {
  if (arch === "gpt2") return `${gpt2Root}h.${layer}`;
  if (isEncoder(arch)) return `${arch}.encoder.layer.${layer}`;
  return `model.layers.${layer}`;
}

/** Matches a checkpoint weight name of a numbered layer; group 1 is the layer. */
export function layerWeightRe(arch: Architecture): RegExp {
  if (arch === "gpt2") return /^(?:transformer\.)?h\.(\d+)\./;
  if (isEncoder(arch)) return arch === "bert" ? /^bert\.encoder\.layer\.(\d+)\./ : /^roberta\.encoder\.layer\.(\d+)\./;
  return /^model\.layers\.(\d+)\./;
}

/** The parent submodule ("self_attn" or "mlp") of a Llama-family target module. */
export function moduleParent(module: string): "self_attn" | "mlp" {
  return ["gate_proj", "up_proj", "down_proj"].includes(module) ? "mlp" : "self_attn";
}

/** The module's path inside its layer (`self_attn.q_proj`, `attention.self.query`). */
export function modulePathInLayer(arch: Architecture, module: string): string {
  if (arch === "gpt2" || isEncoder(arch)) return module;
  return `${moduleParent(module)}.${module}`;
}

/** Input and output features of a LoRA-targetable module of a layer (GPT-2's c_attn is the fused q/k/v: out = 3·hidden). */
export function moduleDims(cfg: ModelConfig, module: string): { in: number; out: number } {
  const H = cfg.hiddenSize, I = cfg.intermediateSize;
  const bad = (): never => {
    throw new LoraDropError("ADAPTER_INVALID", `module ${module} is not a linear layer of a ${cfg.architecture} layer (${archModules(cfg.architecture).join(", ")})`);
  };
  if (cfg.architecture === "gpt2") {
    const dims = ({ "attn.c_attn": { in: H, out: 3 * H }, "attn.c_proj": { in: H, out: H }, "mlp.c_fc": { in: H, out: I }, "mlp.c_proj": { in: I, out: H } } as Record<string, { in: number; out: number }>)[module];
    return dims ?? bad();
  }
  if (isEncoder(cfg.architecture)) {
    if (module === "intermediate.dense") return { in: H, out: I };
    if (module === "output.dense") return { in: I, out: H };
    return (ENCODER_MODULES as readonly string[]).includes(module) ? { in: H, out: H } : bad();
  }
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  switch (module) {
    case "q_proj": return { in: H, out: q };
    case "k_proj": case "v_proj": return { in: H, out: kv };
    case "o_proj": return { in: q, out: H };
    case "gate_proj": case "up_proj": return { in: H, out: I };
    case "down_proj": return { in: I, out: H };
    default: return bad();
  }
}
