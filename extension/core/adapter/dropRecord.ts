/**
 * The LoRA-drop record stored with a pruned adapter: in a sidecar file `lora_drop.json` in the adapter folder and,
 * as JSON strings, under `lora_drop.<field>` keys of the safetensors `__metadata__`, so tools can recognise a
 * LoRA-drop adapter and its structure. adapter_config.json keeps only fields PEFT knows (PEFT 0.13 and older refuse
 * an unknown key); adapters written before carry the record under its `lora_drop` key, which is still read (see
 * recordFile.ts). Also the key names of the compact form and the binding of the shared layers' pairs to one
 * parameter when an adapter is loaded.
 *
 * Compact form: the shared LoRA of module M is stored once, under
 *   base_model.model.lora_drop.shared.M.lora_A.weight   [r, in]
 *   base_model.model.lora_drop.shared.M.lora_B.weight   [out, r]
 * These names sit outside PEFT's `base_model.model.model.layers.N…` namespace on purpose: no PEFT loader mistakes
 * them for a layer's weights (this form is read by this engine only; `--format peft` is the portable one).
 */
import { LoraDropError, describeValue } from "../util/errors";
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
/** The sidecar file holding the record, in the adapter folder. */
export const RECORD_FILE = "lora_drop.json";
/** How the shared LoRA can have been initialised. */
export const SHARED_INITS = ["mean-low-rank", "fresh", "none"] as const;
/** Criteria a record may name (the profile's). */
export const RECORD_CRITERIA = ["output", "gradient", "weight", "ablation"] as const;

/** Kept or shared layer indices: one list for every module, or one list per module (`--per-module`). */
export type LayerSets = number[] | Record<string, number[]>;

/** What lora_drop.json holds (and, in older adapters, adapter_config.json's `lora_drop` key). Snake_case, as Python tools read it. */
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

/**
 * Validates a record (lora_drop.json, the safetensors metadata, or an older adapter_config.json's `lora_drop` key);
 * undefined when absent. Every field is checked for its type and range: a wrong one is an error, never a default.
 * Consistency with the adapter's weights and the model is checked by checkRecordAgainstWeights (recordFile.ts).
 */
export function parseLoraDropRecord(file: string, raw: unknown, prefix = "lora_drop."): LoraDropRecord | undefined {
  if (raw === undefined || raw === null) return undefined;
  const bad = (msg: string, field: string): never => { throw new LoraDropError("ADAPTER_INVALID", `${prefix}${field}: ${msg}`, file, `${prefix}${field}`); };
  if (typeof raw !== "object" || Array.isArray(raw)) return bad("must be an object", "");
  const r = raw as Record<string, unknown>;
  const ints = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) && new Set(v).size === v.length;
  const sets = (v: unknown, field: string): LayerSets => {
    if (ints(v)) return v as number[];
    if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every(ints)) return v as Record<string, number[]>;
    return bad("must be a list of distinct layer indices or an object mapping module names to such lists", field);
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
  const oneOf = <T extends string>(field: string, values: readonly T[], fallback: T): T => {
    const v = r[field] ?? fallback;
    return typeof v === "string" && (values as readonly string[]).includes(v) ? (v as T) : bad(`must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${describeValue(v)}`, field);
  };
  const mode = oneOf("mode", PRUNE_MODES, "share");
  const format = oneOf("format", ADAPTER_FORMATS, "peft");
  const criterion = oneOf("criterion", RECORD_CRITERIA, "output");
  const version = r.version ?? LORA_DROP_RECORD_VERSION;
  if (version !== LORA_DROP_RECORD_VERSION) bad(`version ${describeValue(version)} is not supported (this version reads ${LORA_DROP_RECORD_VERSION})`, "version");
  const threshold = r.threshold ?? null;
  if (threshold !== null && !(typeof threshold === "number" && threshold > 0 && threshold <= 1)) bad(`must be a number in (0, 1] or null, got ${describeValue(threshold)}`, "threshold");
  const keep = r.keep ?? null;
  if (keep !== null && !(Number.isSafeInteger(keep) && (keep as number) > 0)) bad(`must be a positive integer or null, got ${describeValue(keep)}`, "keep");
  const importance = r.importance ?? [];
  const numbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0);
  if (!numbers(importance) && !(typeof importance === "object" && importance !== null && !Array.isArray(importance) && Object.values(importance).every(numbers))) {
    bad("must be a list of non-negative numbers, or an object mapping module names to such lists", "importance");
  }
  const source = r.source_adapter ?? null;
  if (source !== null && typeof source !== "string") bad(`must be a path or null, got ${describeValue(source)}`, "source_adapter");
  const sharedInit = r.shared_init;
  if (sharedInit !== undefined && !(typeof sharedInit === "string" && (SHARED_INITS as readonly string[]).includes(sharedInit))) {
    bad(`must be one of ${SHARED_INITS.join(", ")}, got ${describeValue(sharedInit)}`, "shared_init");
  }
  return {
    version: LORA_DROP_RECORD_VERSION, kept_layers: kept, shared_layers: shared,
    threshold: threshold as number | null, keep: keep as number | null, criterion,
    importance: importance as LoraDropRecord["importance"], mode, format, source_adapter: source as string | null,
    ...(sharedInit !== undefined ? { shared_init: sharedInit as string } : {}),
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
          `lora_drop.mode is "share" but the ${module} LoRA of layer ${p.layer} differs from that of layer ${first.layer}; shared layers must carry one identical LoRA (remove the lora_drop record, ${RECORD_FILE}, to load the layers independently)`,
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
