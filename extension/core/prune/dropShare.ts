/**
 * LoRA-drop's drop-and-share step: the selection of kept and shared layers from a profile (per layer, or per
 * target module with `perModule`), the pruned set of LoRA modules (kept layers keep their own pair; shared layers
 * are bound to one pair per module, or lose their LoRA in "drop" mode), and the record written with the adapter.
 */
import { LoraDropError } from "../util/errors";
import { Adapter } from "../adapter/peftAdapter";
import { ProfileFile } from "../importance/profileSchema";
import { SelectionRule, selectAmong, Selection } from "../importance/selection";
import { meanLowRank } from "./lowRank";
import { LoraDropRecord, LORA_DROP_RECORD_VERSION, sharedParam, layersFor, LayerSets } from "../adapter/dropRecord";
import { layerPrefix, modulePathInLayer } from "../models/arch";
import type { Architecture } from "../models/config";
import { LoraModule, ownParam } from "../adapter/loraModule";
import type { AdapterFormat, PruneMode } from "../adapter/dropRecord";


/** Kept and shared layers, as chosen from a profile. */
export interface DropShareSelection {
  perModule: boolean;
  /** Per layer: one list for all modules. Per module: the lists of each module. */
  kept: LayerSets;
  shared: LayerSets;
  /** The importance the selection was made from (per layer, or per module per layer). */
  importance: number[] | Record<string, number[]>;
  /** Cumulative importance of the kept set (per module when per-module). */
  coverage: number | Record<string, number>;
  rule: SelectionRule;
  criterion: string;
}

/** Layers that carry a LoRA for each module of an adapter. */
export function loraLayers(adapter: Pick<Adapter, "loras" | "modules">): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const m of adapter.modules) out[m] = [...new Set(adapter.loras.filter((l) => l.module === m).map((l) => l.layer))].sort((a, b) => a - b);
  return out;
}

/**
 * Selects kept and shared layers from a profile's importance. Only layers that carry a LoRA take part (a layer
 * the adapter does not touch is neither kept nor shared). The profile must describe this adapter: its parameter
 * table has to agree with the adapter's pairs, so a profile of another adapter is refused rather than misapplied.
 */
export function selectFromProfile(profile: ProfileFile, adapter: Pick<Adapter, "loras" | "modules" | "dir">, rule: SelectionRule, perModule = false, profileFile = "profile"): DropShareSelection {
  checkProfileMatches(profile, adapter, profileFile);
  const byModule = loraLayers(adapter);
  const pos = (layer: number) => profile.layers.indexOf(layer);
  const toLayers = (s: Selection) => ({ kept: s.kept.map((p) => profile.layers[p]!), shared: s.shared.map((p) => profile.layers[p]!) });
  if (!perModule) {
    const candidates = [...new Set(Object.values(byModule).flat())].sort((a, b) => a - b).map(pos);
    const s = selectAmong(profile.importance.per_layer, candidates, rule);
    return { perModule, ...toLayers(s), importance: profile.importance.per_layer, coverage: s.coverage, rule, criterion: profile.criterion };
  }
  if (profile.ablation && !profile.ablation.per_module) {
    throw new LoraDropError("PROFILE_INVALID", "this ablation profile removed whole layers only, so it has no per-module importance; profile again with --criterion ablation --per-module, or select per layer", profileFile, "ablation.per_module");
  }
  const kept: Record<string, number[]> = {};
  const shared: Record<string, number[]> = {};
  const coverage: Record<string, number> = {};
  const importance: Record<string, number[]> = {};
  for (const m of adapter.modules) {
    const s = selectAmong(profile.importance.per_module[m]!, byModule[m]!.map(pos), rule);
    ({ kept: kept[m], shared: shared[m] } = toLayers(s));
    coverage[m] = s.coverage;
    importance[m] = profile.importance.per_module[m]!;
  }
  return { perModule, kept, shared, importance, coverage, rule, criterion: profile.criterion };
}

/** Throws when a profile's layers, modules or parameter table do not describe `adapter`. */
export function checkProfileMatches(profile: ProfileFile, adapter: Pick<Adapter, "loras" | "modules" | "dir">, profileFile: string): void {
  for (const m of adapter.modules) {
    if (!profile.modules.includes(m)) {
      throw new LoraDropError("PROFILE_INVALID", `the profile has no ${m} (it profiled ${profile.modules.join(", ")}); profile ${adapter.dir} again`, profileFile, "modules");
    }
  }
  for (const l of adapter.loras) {
    const p = profile.layers.indexOf(l.layer);
    const counted = p < 0 ? undefined : profile.adapter.params[l.module]?.[p];
    const own = l.r * (l.inFeatures + l.outFeatures);
    if (counted !== own) {
      throw new LoraDropError("PROFILE_INVALID",
        `the profile was made for a different adapter: layer ${l.layer} ${l.module} has ${counted ?? "no"} LoRA parameters in the profile but ${own} in ${adapter.dir}; profile this adapter first`,
        profileFile, "adapter.params");
    }
  }
}

/** How the shared LoRA of one module was initialised. */
export interface SharedInit {
  module: string;
  layers: number[];
  r: number;
  /** Share of the mean ΔW's squared Frobenius norm that the rank-r shared LoRA keeps (1 = exact). */
  energyKept: number;
}

/** The pruned LoRA set. */
export interface DropShareResult {
  loras: LoraModule[];
  sharedInit: SharedInit[];
}

/**
 * Builds the pruned LoRA modules. Kept layers keep their own pair. In "share" mode the shared layers of each
 * module are bound to one parameter `shared.{module}`, initialised as the best rank-r approximation of the mean of
 * their updates s_i·B_i·A_i (see lowRank.ts); in "drop" mode they get none. `onModule` hears of each module before
 * its shared LoRA is computed (the slow part on a large model), for progress.
 */
export function buildDropShare(adapter: Pick<Adapter, "loras" | "modules">, sel: Pick<DropShareSelection, "kept" | "shared">, mode: PruneMode,
  onModule?: (module: string, index: number, count: number) => void): DropShareResult {
  const loras: LoraModule[] = [];
  const sharedInit: SharedInit[] = [];
  for (const l of adapter.loras) {
    if (layersFor(sel.kept, l.module).includes(l.layer)) loras.push({ ...l, param: ownParam(l.layer, l.module) });
  }
  if (mode === "share") {
    for (const [index, m] of adapter.modules.entries()) {
      onModule?.(m, index, adapter.modules.length);
      const shared = new Set(layersFor(sel.shared, m));
      const pairs = adapter.loras.filter((l) => l.module === m && shared.has(l.layer));
      if (pairs.length === 0) continue;
      const { r, scale } = pairs[0]!;
      const odd = pairs.find((p) => p.r !== r || p.scale !== scale);
      if (odd) {
        throw new LoraDropError("INVALID_ARGUMENT",
          `the shared ${m} layers have different ranks or scales (layer ${pairs[0]!.layer}: r=${r}, s=${scale}; layer ${odd.layer}: r=${odd.r}, s=${odd.scale}, from rank_pattern/alpha_pattern), so one LoRA cannot stand for all of them; use --mode drop, or --per-module`);
      }
      const low = meanLowRank(pairs, r, scale);
      const energy = low.singularValues.reduce((a, s) => a + s * s, 0);
      const keptEnergy = low.singularValues.slice(0, r).reduce((a, s) => a + s * s, 0);
      sharedInit.push({ module: m, layers: pairs.map((p) => p.layer), r, energyKept: energy > 0 ? keptEnergy / energy : 1 });
      for (const p of pairs) loras.push({ ...p, A: low.A, B: low.B, param: sharedParam(m) });
    }
  }
  const order = new Map(adapter.modules.map((m, i) => [m, i]));
  loras.sort((a, b) => a.layer - b.layer || order.get(a.module)! - order.get(b.module)!);
  return { loras, sharedInit };
}

/** The LoRA-drop record of a selection. */
export function dropShareRecord(sel: DropShareSelection, mode: PruneMode, format: AdapterFormat, sourceAdapter: string | null, sharedInit: string): LoraDropRecord {
  return {
    version: LORA_DROP_RECORD_VERSION,
    kept_layers: sel.kept, shared_layers: sel.shared,
    threshold: sel.rule.threshold ?? null, keep: sel.rule.keep ?? null,
    criterion: sel.criterion, importance: sel.importance,
    mode, format, source_adapter: sourceAdapter, shared_init: mode === "drop" ? "none" : sharedInit,
  };
}

/**
 * adapter_config.json fields that make PEFT skip the dropped layers. PEFT's `layers_to_transform` is one list
 * for the whole adapter, so it expresses a per-layer drop; a per-module drop (different layers per module) is
 * written as `target_modules`, a regular expression over full module names, which PEFT full-matches. The names are
 * the architecture's own (`model.layers.3.self_attn.q_proj`, `transformer.h.3.attn.c_attn`,
 * `roberta.encoder.layer.3.attention.self.query`), with every dot escaped; GPT-2's `transformer.` root is optional,
 * so the pattern also matches a bare GPT2Model.
 */
export function dropConfig(sel: Pick<DropShareSelection, "kept" | "perModule">, modules: readonly string[], arch: Architecture = "llama"): Record<string, unknown> {
  if (!Array.isArray(sel.kept)) {
    const kept = sel.kept;
    const alternatives = modules.filter((m) => (kept[m] ?? []).length > 0)
      .map((m) => `${layerPattern(arch, kept[m]!)}\\.${escapeRegExp(modulePathInLayer(arch, m))}`);
    return { target_modules: alternatives.join("|"), layers_to_transform: null, layers_pattern: null };
  }
  return { layers_to_transform: [...sel.kept] };
}

/** The pattern of the module-name prefix of the given layers, e.g. `model\.layers\.(?:1|3)`. */
function layerPattern(arch: Architecture, layers: number[]): string {
  const SENTINEL = 987654321;
  const [before, after] = layerPrefix(arch, SENTINEL).split(String(SENTINEL)) as [string, string];
  const root = arch === "gpt2" && before.startsWith("transformer.") ? `(?:transformer\\.)?${escapeRegExp(before.slice("transformer.".length))}` : escapeRegExp(before);
  return `${root}(?:${layers.join("|")})${escapeRegExp(after)}`;
}

/** `s` with every regular-expression metacharacter escaped. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
