/**
 * The LoRA-drop record stored with a pruned adapter: under the `lora_drop` key of adapter_config.json and, as JSON
 * strings, under `lora_drop.<field>` keys of the safetensors `__metadata__`, so tools can recognise a LoRA-drop
 * adapter and its structure. Also the key names of the compact form and the binding of the shared layers' pairs to
 * one parameter when an adapter is loaded.
 *
 * Compact form: the shared LoRA of module M is stored once, under
 *   base_model.model.lora_drop.shared.M.lora_A.weight   [r, in]
 *   base_model.model.lora_drop.shared.M.lora_B.weight   [out, r]
 * These names sit outside PEFT's `base_model.model.model.layers.N…` namespace on purpose: no PEFT loader mistakes
 * them for a layer's weights (this form is read by this engine only; `--format peft` is the portable one).
 */
import { LoraDropError } from "../util/errors";
import type { LoraModule } from "./loraModule";

/** What happens to the layers below the threshold: they share one LoRA ("share", the paper's method) or lose theirs ("drop"). */
export const PRUNE_MODES = ["share", "drop"] as const;
/** One of PRUNE_MODES. */
export type PruneMode = (typeof PRUNE_MODES)[number];
/** How a pruned adapter stores its shared LoRA: under each shared layer's PEFT keys, or once (this engine's compact form). */
export const ADAPTER_FORMATS = ["peft", "compact"] as const;
/** One of ADAPTER_FORMATS. */
export type AdapterFormat = (typeof ADAPTER_FORMATS)[number];

/** Version of the record's layout. */
export const LORA_DROP_RECORD_VERSION = 1;

/** Kept or shared layer indices: one list for every module, or one list per module (`--per-module`). */
export type LayerSets = number[] | Record<string, number[]>;

/** What adapter_config.json's `lora_drop` key holds. Snake_case, as Python tools read it. */
export interface LoraDropRecord {
  version: number;
  /** Layers (or per module) that keep their own LoRA. */
  kept_layers: LayerSets;
  /** Layers (or per module) that share one LoRA ("share") or lost theirs ("drop"). */
  shared_layers: LayerSets;
  /** The cumulative-importance threshold used, or null when `keep` was. */
  threshold: number | null;
  /** The number of kept layers asked for, or null when `threshold` was. */
  keep: number | null;
  /** How importance was measured (profile's criterion). */
  criterion: string;
  /** Normalised importance per layer (or per module, per layer) the selection was made from. */
  importance: number[] | Record<string, number[]>;
  mode: PruneMode;
  /** How the shared LoRA is stored: under each shared layer's PEFT keys, or once (compact). */
  format: AdapterFormat;
  /** The adapter it was pruned from (absolute path), or null when trained with this structure from scratch. */
  source_adapter: string | null;
  /** How the shared LoRA was initialised: "mean-low-rank" (pruning), "fresh" (training), or "none" (drop). */
  shared_init?: string;
}

/** The parameter name shared layers of `module` are bound to. */
export function sharedParam(module: string): string {
  return `shared.${module}`;
}

/** The compact form's key of the shared LoRA of `module`. */
export function compactSharedKey(module: string, which: "A" | "B"): string {
  return `base_model.model.lora_drop.shared.${module}.lora_${which}.weight`;
}

// Module ids may be dotted paths (attention.self.query, attn.c_attn) for the encoders and GPT-2.
/** Matches a compact shared key; group 1 is the module, group 2 A or B. */
export const COMPACT_KEY_RE = /^base_model\.model\.lora_drop\.shared\.(\w+(?:\.\w+)*)\.lora_([AB])\.weight$/;

/** The layers of `module` in a layer set. */
export function layersFor(sets: LayerSets, module: string): number[] {
  return Array.isArray(sets) ? sets : sets[module] ?? [];
}

/** The record as safetensors metadata: one JSON string per field. */
export function recordMetadata(record: LoraDropRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[`lora_drop.${k}`] = JSON.stringify(v);
  return out;
}

/** Validates adapter_config.json's `lora_drop` value; undefined when the key is absent. */
export function parseLoraDropRecord(file: string, raw: unknown): LoraDropRecord | undefined {
  if (raw === undefined || raw === null) return undefined;
  const bad = (msg: string, field: string): never => { throw new LoraDropError("ADAPTER_INVALID", `lora_drop.${field}: ${msg}`, file, `lora_drop.${field}`); };
  if (typeof raw !== "object" || Array.isArray(raw)) bad("must be an object", "");
  const r = raw as Record<string, unknown>;
  const ints = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);
  const sets = (v: unknown, field: string): LayerSets => {
    if (ints(v)) return v as number[];
    if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every(ints)) return v as Record<string, number[]>;
    return bad("must be a list of layer indices or an object mapping module names to such lists", field);
  };
  const kept = sets(r.kept_layers, "kept_layers");
  const shared = sets(r.shared_layers, "shared_layers");
  if (Array.isArray(kept) !== Array.isArray(shared)) bad("kept_layers and shared_layers must both be lists or both be per-module objects", "shared_layers");
  const modules = Array.isArray(kept) ? [""] : [...new Set([...Object.keys(kept), ...Object.keys(shared as object)])];
  for (const m of modules) {
    const k = new Set(layersFor(kept, m));
    const both = layersFor(shared, m).filter((l) => k.has(l));
    if (both.length) bad(`layer ${both[0]} is both kept and shared${m ? ` for ${m}` : ""}`, "shared_layers");
  }
  const mode = r.mode ?? "share";
  if (mode !== "share" && mode !== "drop") bad(`must be "share" or "drop", got ${JSON.stringify(mode)}`, "mode");
  const format = r.format ?? "peft";
  if (format !== "peft" && format !== "compact") bad(`must be "peft" or "compact", got ${JSON.stringify(format)}`, "format");
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  return {
    version: typeof r.version === "number" ? r.version : LORA_DROP_RECORD_VERSION,
    kept_layers: kept, shared_layers: shared,
    threshold: num(r.threshold), keep: num(r.keep),
    criterion: typeof r.criterion === "string" ? r.criterion : "output",
    importance: (r.importance ?? []) as LoraDropRecord["importance"],
    mode: mode as LoraDropRecord["mode"], format: format as LoraDropRecord["format"],
    source_adapter: typeof r.source_adapter === "string" ? r.source_adapter : null,
    ...(typeof r.shared_init === "string" ? { shared_init: r.shared_init } : {}),
  };
}

/**
 * Binds the shared layers' pairs of each module to one parameter, `shared.{module}`, all pointing at the same
 * arrays, so the graph feeds them one input and training sums their gradients. Every shared layer must carry
 * the same LoRA (rank, scale and values): a peft-form adapter whose shared copies were edited apart is an error
 * rather than silently averaged. A shared layer without a pair for a module (the module does not target it) is
 * simply not part of that module's group.
 */
export function bindSharedPairs(record: LoraDropRecord, loras: LoraModule[], file: string): void {
  for (const module of new Set(loras.map((l) => l.module))) {
    const shared = new Set(layersFor(record.shared_layers, module));
    const pairs = loras.filter((l) => l.module === module && shared.has(l.layer));
    const first = pairs[0];
    if (!first) continue;
    for (const p of pairs) {
      const same = p.r === first.r && p.scale === first.scale && equalArrays(p.A, first.A) && equalArrays(p.B, first.B);
      if (!same) {
        throw new LoraDropError("ADAPTER_INVALID",
          `lora_drop.mode is "share" but the ${module} LoRA of layer ${p.layer} differs from that of layer ${first.layer}; shared layers must carry one identical LoRA (remove the lora_drop key from adapter_config.json to load the layers independently)`,
          file, "lora_drop.shared_layers");
      }
      p.A = first.A;
      p.B = first.B;
      p.param = sharedParam(module);
    }
  }
}

function equalArrays(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}
