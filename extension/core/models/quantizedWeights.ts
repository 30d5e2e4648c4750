/**
 * A model's projection weights quantized for a precision (quant/precision.ts): every LoRA-targetable linear
 * module of the layers a graph will build, whatever the architecture, through the quantized-weight cache (one
 * cache file per shard, built on a miss, memory-mapped beside the graph on every run). The graph builders then
 * bind those weights instead of the float32 ones (weights.ts, `WeightBinder.projectionWeight`).
 */
import { archModules, layerPrefix, modulePathInLayer } from "./arch";
import { gpt2Root } from "./gpt2";
import { shardLocation } from "./weights";
import type { HfModel } from "./hfModel";
import type { Precision } from "../quant/precision";
import { PRECISION_FORMATS } from "../quant/quantFormats";
import { defaultQuantCacheDir, ensureQuantized, type QuantizedTensorRef } from "../quant/quantCache";
import type { QuantizedWeights } from "../quant/quantLinear";
import type { Logger } from "../util/progress";

/** Where and how to quantize. */
export interface QuantizeModelOptions {
  /** The cache folder (default: defaultQuantCacheDir()). */
  cacheDir?: string;
  /** Layers the graph builds (default: all). */
  numLayers?: number;
  signal?: AbortSignal;
  log?: Logger;
}

/** The checkpoint names of the projection weights of layers 0 … numLayers-1. */
export function projectionWeightNames(model: HfModel, numLayers = model.config.numLayers): string[] {
  const arch = model.config.architecture;
  const root = arch === "gpt2" ? gpt2Root(model) : undefined;
  const names: string[] = [];
  for (let l = 0; l < numLayers; l++) {
    for (const m of archModules(arch)) names.push(`${layerPrefix(arch, l, root)}.${modulePathInLayer(arch, m)}.weight`);
  }
  return names;
}

/**
 * The model's projection weights at `precision`, from the cache (quantized into it on a miss), or undefined for
 * fp32. Cache files are located after the model's shards: shardLocation(model.shards.length + i).
 */
export async function quantizeModel(model: HfModel, precision: Precision, opts: QuantizeModelOptions = {}): Promise<QuantizedWeights | undefined> {
  if (precision === "fp32") return undefined;
  const { spec, accuracyLevel } = PRECISION_FORMATS[precision];
  const byShard = new Map<string, string[]>();
  for (const name of projectionWeightNames(model, opts.numLayers)) {
    const file = model.weights.get(name)?.index.file;
    // A missing weight is reported by the graph build, with the same message as in fp32.
    if (file) byShard.set(file, [...(byShard.get(file) ?? []), name]);
  }
  const tensors = new Map<string, { ref: QuantizedTensorRef; location: string }>();
  const files: string[] = [];
  const cacheDir = opts.cacheDir ?? defaultQuantCacheDir();
  for (const [file, names] of byShard) {
    const started = Date.now();
    const r = await ensureQuantized({ file, tensors: names, transposed: model.config.architecture === "gpt2" }, spec, { cacheDir, signal: opts.signal });
    opts.log?.info(r.hit
      ? `${precision} weights of ${file} from the cache ${r.file}`
      : `quantized ${names.length} weights of ${file} to ${precision} in ${((Date.now() - started) / 1000).toFixed(1)} s (cached in ${r.file})`);
    const location = shardLocation(model.shards.length + files.length);
    files.push(r.file);
    for (const [name, ref] of r.tensors) tensors.set(name, { ref, location });
  }
  return { accuracyLevel, tensors, files };
}
