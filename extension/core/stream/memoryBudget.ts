/**
 * The memory budget of a streamed run: how many bytes one block of k layers needs (float32 weights, the raw-byte
 * scratch, activations of one batch, the hidden states of every sequence), the k a budget allows, and whether
 * streaming is needed at all.
 */
import * as os from "node:os";
import { LoraDropError } from "../util/errors";
import type { DeviceChoice } from "../runtime/session";
import { nvidiaFreeMemory } from "./gpuMemory";
import { ModelConfig } from "../models/config";
import { LLAMA_FAMILY } from "../models/arch";
import type { Precision } from "../quant/precision";
import { bytesPerWeight } from "../quant/quantFormats";

/** Layer streaming: when the float32 model exceeds the budget (`auto`), always, or never. */
export const STREAM_CHOICES = ["auto", "on", "off"] as const;
/** Whether to stream: `auto` streams when the whole model's float32 weights do not fit the budget. */
export type StreamChoice = (typeof STREAM_CHOICES)[number];

/** Architectures whose decoder layers the streamed path builds (models/llama.ts). */
export const STREAMED_ARCHITECTURES = LLAMA_FAMILY;

/**
 * The most layers per block. Larger blocks save only the per-run overhead (small next to a 7B layer's ~1 s of
 * compute on a CPU) and cost a layer of float32 weights each, twice over with prefetching.
 */
export const MAX_LAYERS_PER_BLOCK = 2;

/** The fraction of free memory used when no budget is given: room for the OS, the page cache and Node itself. */
export const DEFAULT_BUDGET_FRACTION = 0.5;

/** The fraction of free GPU memory used on a GPU execution provider: the rest is the runtime's own workspace. */
export const GPU_BUDGET_FRACTION = 0.8;

/**
 * The default budget: a safe fraction of the memory the OS reports as available, and on a GPU execution provider
 * (or `auto`, which may pick one) also of the GPU's free memory where it can be read (NVIDIA, gpuMemory.ts), since
 * every block then lives in both.
 */
export function defaultMemoryBudget(device: DeviceChoice = "cpu", gpuFree: () => number | undefined = nvidiaFreeMemory): number {
  const host = Math.floor(os.freemem() * DEFAULT_BUDGET_FRACTION);
  if (device === "cpu") return host;
  const gpu = gpuFree();
  return gpu === undefined ? host : Math.min(host, Math.floor(gpu * GPU_BUDGET_FRACTION));
}

/** Parses a size such as `6G`, `512M`, `1.5GiB` or a plain byte count (binary units). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new LoraDropError("INVALID_ARGUMENT", `memory budget "${text}" is not a size (examples: 6G, 512M, 1.5GiB)`, undefined, "memory-budget");
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0)) throw new LoraDropError("INVALID_ARGUMENT", `memory budget "${text}" must be positive`, undefined, "memory-budget");
  return bytes;
}

/** Formats bytes as GiB, MiB or KiB for messages. */
export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  return n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** Elements of one decoder layer's weights (norms, projections, biases). */
export function layerWeightElements(cfg: ModelConfig): number {
  const H = cfg.hiddenSize, D = cfg.headDim, I = cfg.intermediateSize;
  const q = cfg.numHeads * D, kv = cfg.numKvHeads * D;
  return 2 * H + H * (q + 2 * kv) + q * H + 3 * H * I + (cfg.qkvBias ? q + 2 * kv : 0) + (cfg.oBias ? H : 0) + (cfg.mlpBias ? 2 * I + H : 0);
}

/** The sizes of one streamed run. */
export interface RunShape {
  /** Largest batch: sequences and padded length. */
  batch: number;
  seq: number;
  /** All tokens of the run (their hidden states are carried between blocks). */
  totalTokens: number;
  /** Layers that must run (up to the last LoRA layer). */
  layers: number;
}

/** Bytes needed by a block of `k` layers; with `prefetch`, a second block's weights are being read meanwhile. */
export function blockBytes(cfg: ModelConfig, shape: RunShape, k: number, prefetch = false): { total: number; weights: number; activations: number } {
  const H = cfg.hiddenSize, I = cfg.intermediateSize;
  const weights = 4 * k * layerWeightElements(cfg) * (prefetch ? 2 : 1);
  // Raw bytes of the largest tensor (≤ 4 bytes per element) read before conversion.
  const scratch = 4 * Math.max(H * I, H * cfg.numHeads * cfg.headDim);
  const tokens = shape.batch * shape.seq;
  // Live activations of one layer (ORT reuses buffers between layers): q/k/v/attn/residuals, gate/up/act, the
  // attention scores and probabilities; doubled for the allocator's slack.
  const act = 4 * (tokens * (8 * H + 4 * I) + 2 * shape.batch * cfg.numHeads * shape.seq * shape.seq) * 2;
  // Hidden states of every token, in and out of the block.
  const hidden = 4 * 2 * shape.totalTokens * H;
  return { total: weights + scratch + act + hidden, weights, activations: act + hidden + scratch };
}

/** The plan of a run: stream or not, and how many layers per block. */
export interface StreamPlan {
  stream: boolean;
  layersPerBlock: number;
  /** Read the next block in a worker thread while this one runs (needs room for two blocks of weights). */
  prefetch: boolean;
  budget: number;
  /** Bytes a block of `layersPerBlock` layers needs (streaming), or the whole model's float32 weights (not). */
  needed: number;
}

/** The plan in one line for the log: "streaming: 2 layer(s) per block, prefetching the next, ~1.2 GiB of a 6 GiB budget". */
export function describePlan(plan: StreamPlan): string {
  return plan.stream
    ? `streaming: ${plan.layersPerBlock} layer(s) per block${plan.prefetch ? ", prefetching the next" : ""}, ~${formatBytes(plan.needed)} of a ${formatBytes(plan.budget)} budget`
    : `not streaming: the model needs ~${formatBytes(plan.needed)} of a ${formatBytes(plan.budget)} budget`;
}

/**
 * What streamed training holds besides the block: the LM head in float32 with the logits and their gradient, and
 * each block's saved input for the backward pass (activation checkpointing at block boundaries).
 */
export function trainingExtraBytes(cfg: ModelConfig, shape: RunShape): number {
  const head = 4 * cfg.vocabSize * cfg.hiddenSize + 2 * 4 * shape.totalTokens * cfg.vocabSize;
  return head + 4 * (shape.layers + 1) * shape.totalTokens * cfg.hiddenSize;
}

/**
 * Allocator slack over the saved activations of a whole-graph training step: measured peak resident memory over
 * wholeTrainingActivationBytes' raw sum on the TinyLlama shape at seq 128, 256 and 512 (1.33×; 1.26× with the
 * up projections recomputed).
 */
const TRAINING_ACTIVATION_SLACK = 1.35;

/**
 * Memory a whole-graph training step of a Llama-family model holds at its peak besides the weights (the start of
 * the backward pass): per layer and token the two residual-stream inputs, the attention's query, key and value,
 * and the MLP's gate and up projections (only the gate with `recomputeUp`; attention probabilities, SiLU and the
 * normalised rows are recomputed anyway, onnx/recompute.ts), plus the logits' three [tokens, vocab] values; with
 * the allocator's slack. `shape.batch × shape.seq` is one micro-batch (they run one after another).
 */
export function wholeTrainingActivationBytes(cfg: ModelConfig, shape: RunShape, recomputeUp: boolean): number {
  const q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
  const perLayer = 2 * cfg.hiddenSize + q + 2 * kv + (recomputeUp ? 1 : 2) * cfg.intermediateSize;
  const tokens = shape.batch * shape.seq;
  return Math.ceil(TRAINING_ACTIVATION_SLACK * 4 * tokens * (shape.layers * perLayer + 3 * cfg.vocabSize));
}

/**
 * Chooses streaming and the block size for a budget; throws MEMORY_BUDGET when one layer does not fit. `extra`
 * is memory held throughout a streamed run besides the block (trainingExtraBytes for training).
 *
 * Streaming carries float32 weights only. A quantized `precision` (int8, int4) runs the model whole, sized at its
 * quantized bytes: `on` is refused (INVALID_ARGUMENT), and a quantized model over the budget is MEMORY_BUDGET.
 */
export function planStreaming(cfg: ModelConfig, shape: RunShape, budget: number, choice: StreamChoice, extra = 0, precision: Precision = "fp32"): StreamPlan {
  const whole = bytesPerWeight(precision) * shape.layers * layerWeightElements(cfg) + 4 * cfg.vocabSize * cfg.hiddenSize + blockBytes(cfg, shape, 0).activations;
  if (precision !== "fp32") {
    if (choice === "on") {
      throw new LoraDropError("INVALID_ARGUMENT", `layer streaming carries float32 weights; the ${precision} model (~${formatBytes(whole)}) runs whole: leave --stream out, or choose --precision fp32 to stream`, undefined, "stream");
    }
    if (choice === "auto" && whole > budget) {
      throw new LoraDropError("MEMORY_BUDGET", `at ${precision} the model needs ~${formatBytes(whole)} of a ${formatBytes(budget)} budget, and quantized weights are not streamed: ` +
        `raise --memory-budget, lower --batch-size/--max-tokens, or choose --precision fp32, which streams`, undefined, "memory-budget");
    }
    return { stream: false, layersPerBlock: shape.layers, prefetch: false, budget, needed: whole };
  }
  if (choice === "off" || (choice === "auto" && whole <= budget)) return { stream: false, layersPerBlock: shape.layers, prefetch: false, budget, needed: whole };
  const one = blockBytes(cfg, shape, 1);
  if (one.total + extra > budget) {
    throw new LoraDropError("MEMORY_BUDGET",
      `the memory budget ${formatBytes(budget)} is smaller than one streamed decoder layer: at least ${formatBytes(one.total + extra)} is needed ` +
      `(${formatBytes(one.weights)} of float32 weights, ${formatBytes(one.activations)} of activations for ${shape.totalTokens} tokens in batches of ${shape.batch}×${shape.seq}` +
      `${extra ? `, ${formatBytes(extra)} for the LM head and the saved block inputs` : ""}); ` +
      `raise --memory-budget or lower --batch-size/--max-tokens`, undefined, "memory-budget");
  }
  // Prefetching hides most of the read time, so it comes before larger blocks (which gain little on a CPU).
  const prefetch = shape.layers > 1 && blockBytes(cfg, shape, 1, true).total + extra <= budget;
  let k = 1;
  while (k < Math.min(shape.layers, MAX_LAYERS_PER_BLOCK) && blockBytes(cfg, shape, k + 1, prefetch).total + extra <= budget) k++;
  return { stream: true, layersPerBlock: k, prefetch, budget, needed: blockBytes(cfg, shape, k, prefetch).total + extra };
}
