/**
 * The profiler: runs base model + LoRA over a dataset sample and records, for every LoRA module, the squared norm
 * of its output s·B·A·x at every token (computed inside the graph), then LoRA-drop's importance per layer.
 */
import * as path from "node:path";
import { loadHfModel, HfModel } from "./hfModel";
import { loadAdapter, Adapter, LoraModule, peftKey } from "./peftAdapter";
import { readDataset, tokenizeExamples, TokenizedExample } from "./dataset";
import { TextTokenizer } from "./tokenize";
import { batchesOf, makeBatch } from "./batch";
import { LoraForwardRunner } from "./loraRunner";
import { DeviceChoice } from "./session";
import { ProfileFile, PROFILE_SCHEMA, PROFILE_VERSION, Criterion } from "./profileSchema";
import { normalise } from "./selection";
import { RunContext } from "./progress";
import { throwIfCancelled, LoraDropError } from "./errors";
import { pairEncoding, tokensFor } from "./models/arch";
import { Batch } from "./batch";
import { defaultMemoryBudget, planStreaming, StreamChoice, StreamPlan, STREAMED_ARCHITECTURES } from "./stream/memoryBudget";
import { streamedLoraNorms } from "./stream/streamForward";
import { PeakRss } from "./stream/peakMemory";

/** What to profile and how. */
export interface ProfileOptions {
  modelDir: string;
  adapterDir: string;
  dataPath: string;
  /** Examples taken from the start of the dataset (default 64). */
  maxExamples?: number;
  /** Tokens per example at most (default 128). */
  maxTokens?: number;
  /** Sequences per session run (default 8). */
  batchSize?: number;
  device?: DeviceChoice;
  threads?: number;
  /** `output` (LoRA-drop, default), `weight` (||s·B·A||_F²) or `gradient` (||∂L/∂A||² + ||∂L/∂B||², training graph). */
  criterion?: Criterion;
  /** Bytes the streamed working set may use (default: half the available memory). */
  memoryBudget?: number;
  /** Run layer blocks one after another from the shards (`auto`: when the float32 model exceeds the budget). */
  stream?: StreamChoice;
  /** Called once the streaming decision is made (the CLI prints it). */
  onPlan?: (plan: StreamPlan) => void;
}

/** Loads the tokenizer of a model folder, if it has one. */
export function modelTokenizer(model: HfModel): TextTokenizer | undefined {
  return model.tokenizerFile ? TextTokenizer.load(model.tokenizerFile, model.tokenizerConfigFile) : undefined;
}

/** Reads, samples and tokenises the examples of a dataset for a model. */
export function loadExamples(model: HfModel, dataPath: string, maxExamples: number, maxTokens: number): TokenizedExample[] {
  const raw = readDataset(dataPath, { maxExamples });
  return tokenizeExamples(dataPath, raw, modelTokenizer(model), model.config.vocabSize, tokensFor(model.config, maxTokens), pairEncoding(model.config));
}

/** Number of LoRA parameters per module and layer, for the profile file. */
export function paramsTable(adapter: Adapter, numLayers: number): Record<string, number[]> {
  const table: Record<string, number[]> = {};
  for (const m of adapter.modules) table[m] = new Array(numLayers).fill(0);
  for (const l of adapter.loras) table[l.module]![l.layer] = l.r * (l.inFeatures + l.outFeatures);
  return table;
}

/** ||s·B·A||_F², computed from r×r Gram matrices (never forms the out×in product). */
export function loraWeightNorm(l: LoraModule): number {
  const { r, inFeatures: n, outFeatures: m } = l;
  const aat = new Float64Array(r * r);
  const btb = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let sa = 0;
      for (let k = 0; k < n; k++) sa += l.A[i * n + k]! * l.A[j * n + k]!;
      aat[i * r + j] = sa;
      let sb = 0;
      for (let k = 0; k < m; k++) sb += l.B[k * r + i]! * l.B[k * r + j]!;
      btb[i * r + j] = sb;
    }
  }
  let s = 0;
  for (let i = 0; i < r * r; i++) s += aat[i]! * btb[i]!;
  return l.scale * l.scale * s;
}

/** Runs a profile and returns the profile file's content. */
export async function profileAdapter(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const started = Date.now();
  const maxExamples = opts.maxExamples ?? 64;
  const maxTokens = opts.maxTokens ?? 128;
  const criterion = opts.criterion ?? "output";
  if (criterion === "gradient") {
    // Loaded on demand: the gradient criterion runs the training graph, which imports this module.
    const { profileGradient } = await import("./train/gradientCriterion");
    return profileGradient(opts, ctx);
  }
  const model = loadHfModel(opts.modelDir);
  const adapter = loadAdapter(opts.adapterDir, model.config);
  const examples = loadExamples(model, opts.dataPath, maxExamples, maxTokens);
  const L = model.config.numLayers;
  const modules = adapter.modules;
  throwIfCancelled(ctx.signal, "profile");

  const norms: Record<string, number[][][]> = {};
  for (const m of modules) norms[m] = Array.from({ length: L }, () => examples.map((e) => new Array(e.ids.length).fill(0)));
  const perModuleRaw: Record<string, number[]> = {};
  for (const m of modules) perModuleRaw[m] = new Array(L).fill(0);

  let device = "cpu";
  const peak = new PeakRss().start();
  const totalTokens = examples.reduce((a, e) => a + e.ids.length, 0);
  let peakRss = 0;
  try {
    if (criterion === "weight") {
      for (const l of adapter.loras) perModuleRaw[l.module]![l.layer]! += loraWeightNorm(l);
    } else {
      const batches = batchesOf(examples, opts.batchSize ?? 8).map((group) => makeBatch(group));
      const accumulate = (batch: Batch, loraNorms: Float32Array, taps: { layer: number; module: string }[]) => {
        taps.forEach((tap, ti) => {
          batch.examples.forEach((ex, b) => {
            const row = norms[tap.module]![tap.layer]![ex.example]!;
            for (let t = 0; t < ex.ids.length; t++) {
              const v = loraNorms[(ti * batch.batch + b) * batch.seq + t]!;
              row[t] = v;
              perModuleRaw[tap.module]![tap.layer]! += v;
            }
          });
        });
      };
      const lastLora = adapter.loras.length ? Math.max(...adapter.loras.map((l) => l.layer)) + 1 : 0;
      // Streaming builds Llama-family blocks; other architectures run whole.
      const streamable = (STREAMED_ARCHITECTURES as readonly string[]).includes(model.config.architecture);
      if (!streamable && opts.stream === "on") throw new LoraDropError("INVALID_ARGUMENT", `layer streaming supports ${STREAMED_ARCHITECTURES.join(", ")} models, not ${model.config.architecture}`, opts.modelDir, "stream");
      const plan = planStreaming(model.config, {
        batch: Math.max(1, ...batches.map((b) => b.batch)), seq: Math.max(1, ...batches.map((b) => b.seq)), totalTokens, layers: lastLora,
      }, opts.memoryBudget ?? defaultMemoryBudget(opts.device ?? "auto"), streamable ? opts.stream ?? "auto" : "off");
      opts.onPlan?.(plan);
      if (plan.stream) {
        ctx.log?.info(`streaming ${lastLora} layers in blocks of ${plan.layersPerBlock}${plan.prefetch ? ", prefetching the next block" : ""}`);
        const res = await streamedLoraNorms(model, adapter.loras, batches, { device: opts.device ?? "auto", threads: opts.threads, layersPerBlock: plan.layersPerBlock, prefetch: plan.prefetch, peak }, ctx);
        device = res.device;
        batches.forEach((batch, bi) => accumulate(batch, res.loraNorms[bi]!, res.tapOrder));
      } else {
        const runner = await LoraForwardRunner.create(model, adapter.loras, {
          logits: false, loraNorms: true, device: opts.device ?? "auto", threads: opts.threads, truncateAfterLastLora: true, log: ctx.log,
        });
        device = runner.device;
        try {
          let done = 0;
          for (const batch of batches) {
            throwIfCancelled(ctx.signal, "profile");
            const { loraNorms } = await runner.run(batch, adapter.loras);
            accumulate(batch, loraNorms!, runner.graph.tapOrder);
            done += batch.examples.reduce((a, e) => a + e.ids.length, 0);
            const secs = (Date.now() - started) / 1000;
            ctx.progress?.report({ step: done, total: totalTokens, message: `${done}/${totalTokens} tokens`, tokensPerSecond: done / Math.max(secs, 1e-3) });
          }
        } finally {
          await runner.dispose();
        }
      }
    }
  } finally {
    peakRss = peak.stop();
  }

  assertFiniteNorms(perModuleRaw, adapter, opts.adapterDir, model.dir);
  return assembleProfile({ opts, model, adapter, examples, criterion, device, perModuleRaw, norms: criterion === "output" ? norms : undefined, started, peakRss });
}

/** What a criterion measured, to be written as a profile file. */
export interface MeasuredImportance {
  opts: ProfileOptions;
  model: HfModel;
  adapter: Adapter;
  examples: TokenizedExample[];
  criterion: Criterion;
  device: string;
  /** Raw importance per module and layer. */
  perModuleRaw: Record<string, number[]>;
  /** Per-token norms, for the output criterion. */
  norms?: Record<string, number[][][]>;
  /** Date.now() when the run started. */
  started: number;
  peakRss?: number;
}

/** Builds the profile file from what a criterion measured: normalised importance, settings, sequences, timing. */
export function assembleProfile(m: MeasuredImportance): ProfileFile {
  const L = m.model.config.numLayers;
  const modules = m.adapter.modules;
  const perLayerRaw = Array.from({ length: L }, (_, i) => modules.reduce((a, mod) => a + m.perModuleRaw[mod]![i]!, 0));
  const perModule: Record<string, number[]> = {};
  for (const mod of modules) perModule[mod] = normalise(m.perModuleRaw[mod]!);
  const seconds = (Date.now() - m.started) / 1000;
  const tokens = m.examples.reduce((a, e) => a + e.ids.length, 0);
  const cfg = m.model.config;
  return {
    schema: PROFILE_SCHEMA,
    version: PROFILE_VERSION,
    created: new Date().toISOString(),
    criterion: m.criterion,
    device: m.device,
    model: { path: path.resolve(m.opts.modelDir), architecture: cfg.architecture, num_layers: L, hidden_size: cfg.hiddenSize, vocab_size: cfg.vocabSize },
    adapter: {
      path: path.resolve(m.opts.adapterDir), r: m.adapter.config.r, lora_alpha: m.adapter.config.loraAlpha, target_modules: modules,
      params: paramsTable(m.adapter, L), total_params: m.adapter.loras.reduce((a, l) => a + l.r * (l.inFeatures + l.outFeatures), 0),
    },
    settings: { data: path.resolve(m.opts.dataPath), max_examples: m.opts.maxExamples ?? 64, max_tokens: m.opts.maxTokens ?? 128 },
    layers: Array.from({ length: L }, (_, i) => i),
    modules,
    sequences: m.examples.map((e) => ({ ids: e.ids, tokens: e.tokens, special: e.special, example: e.example })),
    ...(m.norms ? { norms: m.norms } : {}),
    importance: { per_layer_raw: perLayerRaw, per_layer: normalise(perLayerRaw), per_module_raw: m.perModuleRaw, per_module: perModule },
    timing: { seconds, tokens, tokens_per_second: tokens / Math.max(seconds, 1e-9), ...(m.peakRss !== undefined ? { peak_rss_bytes: m.peakRss } : {}) },
  };
}

/**
 * Refuses a profile whose norms are not finite: NaN or Inf would otherwise be written as null and rank layers
 * arbitrarily. A non-finite LoRA output spreads to every later layer, so the error names the cause: the first
 * adapter tensor holding NaN/Inf if there is one, else the first layer and module (in forward order) that went bad.
 */
function assertFiniteNorms(perModuleRaw: Record<string, number[]>, adapter: Adapter, adapterDir: string, modelDir: string): void {
  const bad = adapter.modules.flatMap((m) => perModuleRaw[m]!.map((g, layer) => ({ m, layer, g }))).filter((x) => !Number.isFinite(x.g));
  if (bad.length === 0) return;
  for (const l of adapter.loras) {
    const which = !l.A.every(Number.isFinite) ? "A" : !l.B.every(Number.isFinite) ? "B" : undefined;
    if (which) {
      throw new LoraDropError("NUMERICAL", `the LoRA outputs are not finite from layer ${l.layer} ${l.module} on: its lora_${which} weights contain NaN or Inf`,
        path.join(adapterDir, "adapter_model.safetensors"), peftKey(l.layer, l.module, which, adapter.config.architecture));
    }
  }
  const order = (m: string) => adapter.modules.indexOf(m);
  const first = bad.sort((a, b) => a.layer - b.layer || order(a.m) - order(b.m))[0]!;
  throw new LoraDropError("NUMERICAL", `the LoRA output norm of layer ${first.layer} ${first.m} is ${first.g}: NaN or Inf in the base model's weights, or a float32 overflow in the model or the LoRA`,
    modelDir, `layers.${first.layer}.${first.m}`);
}
