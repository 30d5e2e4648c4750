/**
 * `lora-drop sweep`: the loss of every candidate LoRA-drop pruning of an adapter, before any retraining. A pruned
 * adapter is usable at once (kept layers keep their LoRA, shared layers start from the best rank-r approximation
 * of their mean update), so for each threshold the very adapter `prune` would write is built in memory
 * (buildPrunedAdapter) and scored on the data — beside the base model (no LoRA) and the adapter as it is — on
 * either engine (evaluate/scoreSets.ts): through one compiled onnx model whose LoRA values are inputs, or one torch
 * model whose PEFT LoRA layers are given each candidate's tensors.
 */
import * as path from "node:path";
import { loadHfModel } from "../models/hfModel";
import { isEncoder } from "../models/arch";
import { loadAdapter } from "../adapter/peftAdapter";
import { withAdapterHead } from "../adapter/adapterHead";
import { countLoraParams, type LoraModule } from "../adapter/loraModule";
import type { PruneMode } from "../adapter/dropRecord";
import { loadExamples } from "../data/examples";
import { readProfile } from "../importance/profileFile";
import type { ProfileFile } from "../importance/profileSchema";
import { PROFILE_DEFAULTS } from "../importance/options";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import type { RunContext } from "../util/progress";
import type { EvaluationOptions } from "../evaluate/loraSets";
import { scoreLoraSets } from "../evaluate/scoreSets";
import { checkEngineOptions } from "../torch/engineOptions";
import { checkEnginePrecision } from "../quant/precision";
import { loraLayers, selectFromProfile } from "../prune/dropShare";
import { buildPrunedAdapter, type PrunedAdapter } from "../prune/prune";
import { distinctThresholds } from "./thresholds";
import { SWEEP_SCHEMA, SWEEP_VERSION, type SweepFile, type SweepPoint } from "./sweepSchema";

/** What to sweep and how to measure it (the evaluation's own options: device, threads, batch size, streaming). */
export interface SweepOptions extends Omit<EvaluationOptions, "onScore"> {
  modelDir: string;
  adapterDir: string;
  /** A profile file of this adapter (or the profile itself). */
  profile: string | ProfileFile;
  dataPath: string;
  mode?: PruneMode;
  perModule?: boolean;
  /** Thresholds in (0, 1] to measure; default: every one at which the kept set changes (distinctThresholds). */
  thresholds?: number[];
  /** Examples taken from the start of the dataset (default 64, as profile). */
  maxExamples?: number;
  /** Tokens per example at most (default 128). */
  maxTokens?: number;
}

/** Measures every candidate and returns the sweep file's content. */
export async function runSweep(opts: SweepOptions, ctx: RunContext = {}): Promise<SweepFile> {
  // The engine's options first: a device or an option of the other engine is refused before any file is read.
  const engine = checkEngineOptions(opts);
  checkEnginePrecision(opts);
  const profileFile = typeof opts.profile === "string" ? opts.profile : "profile";
  const profile = typeof opts.profile === "string" ? readProfile(opts.profile) : opts.profile;
  const mode = opts.mode ?? "share";
  const perModule = opts.perModule ?? false;
  const base = loadHfModel(opts.modelDir);
  const adapter = loadAdapter(opts.adapterDir, base.config);
  // A sequence classifier is scored through the head its adapter saved (modules_to_save), as `train` does.
  const model = isEncoder(base.config.architecture) ? withAdapterHead(base, adapter) : base;
  const maxExamples = opts.maxExamples ?? PROFILE_DEFAULTS.maxExamples;
  const maxTokens = opts.maxTokens ?? PROFILE_DEFAULTS.maxTokens;
  const examples = loadExamples(model, opts.dataPath, maxExamples, maxTokens);
  throwIfCancelled(ctx.signal, "sweep");

  const thresholds = opts.thresholds ?? distinctThresholds(profile, positionsOf(profile, loraLayers(adapter)), perModule);
  for (const t of thresholds) {
    if (!(t > 0 && t <= 1)) throw new LoraDropError("INVALID_ARGUMENT", `threshold ${t} is outside (0, 1]`, undefined, "thresholds");
  }
  // One candidate per distinct kept set (two thresholds may keep the same layers), the lowest threshold first.
  const seen = new Set<string>();
  const unique = [...new Set(thresholds)].sort((a, b) => a - b).filter((t) => {
    const key = JSON.stringify(selectFromProfile(profile, adapter, { threshold: t }, perModule, profileFile).kept);
    return !seen.has(key) && (seen.add(key), true);
  });
  const built = new Map<number, PrunedAdapter>();
  const candidate = (i: number): PrunedAdapter => {
    let p = built.get(i);
    if (!p) {
      p = buildPrunedAdapter(adapter, profile, { threshold: unique[i]!, perModule, mode }, profileFile);
      built.set(i, p);
    }
    return p;
  };
  // Configuration 0 is the base model, 1 the adapter as it is, then the candidates.
  const sets = { count: unique.length + 2, get: (i: number): LoraModule[] => (i === 0 ? [] : i === 1 ? adapter.loras : candidate(i - 2).loras) };
  const run = await scoreLoraSets(model, adapter, sets, examples, {
    ...opts,
    onScore: (i, s) => ctx.log?.info(i === 0 ? `base model: loss ${s.loss.toFixed(5)}` : i === 1 ? `full adapter: loss ${s.loss.toFixed(5)}` : `T = ${unique[i - 2]}: loss ${s.loss.toFixed(5)}`),
  }, ctx);
  const [baseScore, fullScore, ...scores] = run.scores;
  const points: SweepPoint[] = scores.map((s, i) => {
    const p = candidate(i);
    return {
      threshold: unique[i]!, coverage: p.selection.coverage, kept_layers: p.selection.kept, shared_layers: p.selection.shared,
      lora_params: p.paramsAfter, loss: s.loss, ...(s.accuracy !== undefined ? { accuracy: s.accuracy } : {}),
    };
  }).sort((a, b) => a.lora_params - b.lora_params || a.threshold - b.threshold);
  const classifier = model.config.head === "seq-cls";
  return {
    schema: SWEEP_SCHEMA, version: SWEEP_VERSION, created: new Date().toISOString(),
    model: { path: path.resolve(opts.modelDir), architecture: model.config.architecture },
    adapter: { path: path.resolve(opts.adapterDir), total_params: countLoraParams(adapter.loras) },
    profile: { path: typeof opts.profile === "string" ? path.resolve(opts.profile) : "", criterion: profile.criterion, created: profile.created },
    mode, per_module: perModule, task: classifier ? "sequence-classification" : "causal-lm", engine,
    base_loss: baseScore!.loss, full_loss: fullScore!.loss,
    ...(classifier ? { base_accuracy: baseScore!.accuracy!, full_accuracy: fullScore!.accuracy! } : {}),
    points,
    measured: {
      data: path.resolve(opts.dataPath), max_examples: maxExamples, max_tokens: maxTokens, examples: run.examples, tokens: run.tokens, targets: run.targets,
      device: run.device, precision: opts.precision ?? "fp32", streamed: run.streamed, ...(run.configurationsPerPass !== undefined ? { configurations_per_pass: run.configurationsPerPass } : {}),
      seconds: run.seconds, peak_rss_bytes: run.peakRssBytes,
    },
  };
}

/** Per module, the profile positions of the layers that carry a LoRA for it. */
function positionsOf(profile: ProfileFile, byModule: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [m, layers] of Object.entries(byModule)) out[m] = layers.map((l) => profile.layers.indexOf(l)).filter((p) => p >= 0);
  return out;
}
