/**
 * The `ablation` criterion: a layer matters as much as the loss rises when its LoRA is taken away. One evaluation
 * of the adapter as it is, then one per LoRA layer with that layer's LoRA set to zero, all over the same examples
 * and on either engine (evaluate/scoreSets.ts: one compiled onnx model, or one torch model whose PEFT LoRA layers
 * are switched off one at a time); g_i = loss(without layer i's LoRA) − loss(full adapter).
 * g_i is negative when the layer's LoRA hurts on this data; normalised importance counts only the positive part
 * (assemble.ts, normaliseImportance). With `ablationPerModule`, each module of each layer is also removed on its
 * own for the per-module table; otherwise that table repeats the layer's value for every module the layer carries.
 */
import { isEncoder } from "../models/arch";
import { withAdapterHead } from "../adapter/adapterHead";
import type { LoraModule } from "../adapter/loraModule";
import { scoreLoraSets } from "../evaluate/scoreSets";
import { throwIfCancelled } from "../util/errors";
import type { RunContext } from "../util/progress";
import { assembleProfile, loadProfileInputs, zeroTable } from "./assemble";
import { PROFILE_DEFAULTS, type ProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";

/** Profiles an adapter with the ablation criterion. */
export async function profileAblation(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const started = Date.now();
  // A sequence classifier's loss goes through the head its adapter saved, as training and evaluation do.
  const { model, adapter, examples } = loadProfileInputs(opts, (base, a) => (isEncoder(base.config.architecture) ? withAdapterHead(base, a) : base));
  throwIfCancelled(ctx.signal, "profile");
  const L = model.config.numLayers;
  const layers = [...new Set(adapter.loras.map((l) => l.layer))].sort((a, b) => a - b);
  const perModule = (opts.ablationPerModule ?? false) && adapter.modules.length > 1;
  // Configuration 0: the adapter as it is; then one per layer without it; then, per module, one per (layer, module).
  const removed: { layer: number; module?: string }[] = [...layers.map((layer) => ({ layer })),
    ...(perModule ? adapter.loras.map((l) => ({ layer: l.layer, module: l.module })) : [])];
  const without = (r: { layer: number; module?: string }): LoraModule[] => adapter.loras.filter((l) => l.layer !== r.layer || (r.module !== undefined && l.module !== r.module));
  const run = await scoreLoraSets(model, adapter, { count: removed.length + 1, get: (i) => (i === 0 ? adapter.loras : without(removed[i - 1]!)) }, examples, {
    engine: opts.engine, python: opts.python, dtype: opts.dtype, graceMs: opts.graceMs, env: opts.env, device: opts.device, threads: opts.threads, batchSize: opts.batchSize ?? PROFILE_DEFAULTS.batchSize, memoryBudget: opts.memoryBudget, stream: opts.stream, onPlan: opts.onPlan,
    precision: opts.precision, quantCacheDir: opts.quantCacheDir,
    onScore: (i, s) => ctx.log?.info(i === 0 ? `full adapter: loss ${s.loss.toFixed(5)}` : `without ${describe(removed[i - 1]!)}: loss ${s.loss.toFixed(5)}`),
  }, ctx);
  const full = run.scores[0]!.loss;
  // Each increase is a difference of two sums over the same batches in the same order: a layer whose LoRA is zero
  // gives identical runs, so exactly 0.
  const increase = (i: number) => run.scores[i + 1]!.loss - full;
  const perLayerRaw = new Array<number>(L).fill(0);
  layers.forEach((layer, i) => (perLayerRaw[layer] = increase(i)));
  const perModuleRaw = zeroTable(adapter.modules, L);
  adapter.loras.forEach((l, j) => {
    perModuleRaw[l.module]![l.layer] = perModule ? increase(layers.length + j) : perLayerRaw[l.layer]!;
  });
  return assembleProfile({
    opts, model, adapter, examples, criterion: "ablation", engine: opts.engine ?? "onnx", device: run.device, perModuleRaw, perLayerRaw, started, peakRss: run.peakRssBytes,
    ablation: { full_loss: full, per_module: perModule || adapter.modules.length === 1 },
  });
}

function describe(r: { layer: number; module?: string }): string {
  return r.module === undefined ? `layer ${r.layer}'s LoRA` : `layer ${r.layer} ${r.module}`;
}
