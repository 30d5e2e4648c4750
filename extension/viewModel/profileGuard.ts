/**
 * Structural validation of a ProfileFile arriving over the host↔webview channel.
 *
 * The host reads profiles from disk (its own loader gives the user-facing error messages); this check is
 * the webview's defence: every array the panel indexes must have the length the profile claims, every
 * number must be finite, so rendering code can index without re-checking.
 */
import { CRITERIA, PROFILE_SCHEMA, PROFILE_VERSION, SIGNED_CRITERIA, type ProfileFile } from "../core/importance/profileSchema";
import { ENGINE_CHOICES } from "../core/torch/engineChoice";
import { PRECISIONS } from "../core/quant/precision";
import {
  isArrayOf,
  isArrayOfLength,
  isBoolean,
  isBoundedString,
  isCount,
  isFiniteNumber,
  isNonNegative,
  isObject,
  isOneOf,
  isString,
  type Fields,
} from "./guards";

/** Upper bounds that keep a hostile or corrupt message from exhausting the panel's memory. */
export const PROFILE_LIMITS = {
  layers: 4096,
  modules: 256,
  sequences: 100_000,
  tokensPerSequence: 131_072,
  tokenChars: 65_536,
  textChars: 4096,
} as const;

/** Returns a short reason why `x` is not a usable ProfileFile, or undefined when it is one. */
export function profileProblem(x: unknown): string | undefined {
  if (!isObject(x)) return "profile is not an object";
  if (x.schema !== PROFILE_SCHEMA) return `schema is not "${PROFILE_SCHEMA}"`;
  if (x.version !== PROFILE_VERSION) return `version is not ${PROFILE_VERSION}`;
  if (!isBoundedString(x.created, PROFILE_LIMITS.textChars)) return "created is not a string";
  if (!isOneOf(x.criterion, CRITERIA)) return "criterion is unknown";
  if (!isBoundedString(x.device, PROFILE_LIMITS.textChars)) return "device is not a string";
  if (x.engine !== undefined && !isOneOf(x.engine, ENGINE_CHOICES)) return "engine is unknown";
  if (x.precision !== undefined && !isOneOf(x.precision, PRECISIONS)) return "precision is unknown";
  const model = x.model;
  if (!isObject(model) || !isBoundedString(model.path, PROFILE_LIMITS.textChars) || !isBoundedString(model.architecture, PROFILE_LIMITS.textChars)) {
    return "model is malformed";
  }
  if (!isCount(model.num_layers) || !isCount(model.hidden_size) || !isCount(model.vocab_size)) return "model sizes are not counts";
  const settings = x.settings;
  if (!isObject(settings) || !isBoundedString(settings.data, PROFILE_LIMITS.textChars) || !isCount(settings.max_examples) || !isCount(settings.max_tokens)) {
    return "settings are malformed";
  }
  const timing = x.timing;
  if (!isObject(timing) || !isNonNegative(timing.seconds) || !isNonNegative(timing.tokens) || !isNonNegative(timing.tokens_per_second)
    || (timing.peak_rss_bytes !== undefined && !isNonNegative(timing.peak_rss_bytes))) {
    return "timing is malformed";
  }

  const layers = x.layers;
  if (!isArrayOf(layers, isCount) || layers.length === 0 || layers.length > PROFILE_LIMITS.layers) return "layers must be 1…4096 layer indices";
  const layerCount = layers.length;
  const modules = x.modules;
  if (!isArrayOf(modules, isModuleName) || modules.length === 0 || modules.length > PROFILE_LIMITS.modules) return "modules must be 1…256 names";
  if (new Set(modules).size !== modules.length) return "module names repeat";

  const adapterProblem = checkAdapter(x.adapter, modules, layerCount);
  if (adapterProblem) return adapterProblem;

  const sequences = x.sequences;
  if (!Array.isArray(sequences) || sequences.length > PROFILE_LIMITS.sequences) return "sequences is not a bounded array";
  const tokenCounts: number[] = [];
  for (let i = 0; i < sequences.length; i++) {
    const problem = checkSequence(sequences[i]);
    if (problem) return `sequence ${i}: ${problem}`;
    tokenCounts.push((sequences[i] as { tokens: string[] }).tokens.length);
  }

  if (x.norms !== undefined) {
    const problem = checkNorms(x.norms, modules, layerCount, tokenCounts);
    if (problem) return problem;
  }
  if (x.ablation !== undefined && (!isObject(x.ablation) || !isFiniteNumber(x.ablation.full_loss) || !isBoolean(x.ablation.per_module))) return "ablation is malformed";
  // Ablation's raw values are loss increases, negative where a layer's LoRA hurts; normalised importance never is.
  return checkImportance(x.importance, modules, layerCount, SIGNED_CRITERIA.includes(x.criterion));
}

/** True when `x` is a ProfileFile whose arrays are mutually consistent (see profileProblem). */
export function isProfileFile(x: unknown): x is ProfileFile {
  return profileProblem(x) === undefined;
}

/** Module names are identifiers such as "q_proj" or "mlp.down_proj"; they double as CSV fields and labels. */
function isModuleName(x: unknown): x is string {
  return typeof x === "string" && x.length > 0 && x.length <= 128;
}

function checkAdapter(adapter: unknown, modules: string[], layerCount: number): string | undefined {
  if (!isObject(adapter)) return "adapter is not an object";
  if (!isBoundedString(adapter.path, PROFILE_LIMITS.textChars)) return "adapter.path is not a string";
  if (!isCount(adapter.r) || !isFiniteNumber(adapter.lora_alpha) || !isCount(adapter.total_params)) return "adapter sizes are malformed";
  if (!isArrayOf(adapter.target_modules, isString)) return "adapter.target_modules is not a list of names";
  const params = adapter.params;
  if (!isObject(params)) return "adapter.params is not an object";
  for (const m of modules) {
    if (!isArrayOfLength(params[m], layerCount, isCount)) return `adapter.params.${m} must hold ${layerCount} counts`;
  }
  return undefined;
}

function checkSequence(seq: unknown): string | undefined {
  if (!isObject(seq)) return "not an object";
  const tokens = seq.tokens;
  if (!Array.isArray(tokens) || tokens.length > PROFILE_LIMITS.tokensPerSequence) return "tokens is not a bounded array";
  if (!tokens.every((t) => isBoundedString(t, PROFILE_LIMITS.tokenChars))) return "a token is not a bounded string";
  if (!isArrayOfLength(seq.ids, tokens.length, isCount)) return "ids do not match tokens";
  if (!isArrayOfLength(seq.special, tokens.length, isBoolean)) return "special does not match tokens";
  if (!isCount(seq.example)) return "example is not a count";
  return undefined;
}

function checkNorms(norms: unknown, modules: string[], layerCount: number, tokenCounts: number[]): string | undefined {
  if (!isObject(norms)) return "norms is not an object";
  for (const m of modules) {
    const perLayer = norms[m];
    if (!Array.isArray(perLayer) || perLayer.length !== layerCount) return `norms.${m} must hold ${layerCount} layers`;
    for (let l = 0; l < layerCount; l++) {
      const perSeq: unknown = perLayer[l];
      if (!Array.isArray(perSeq) || perSeq.length !== tokenCounts.length) return `norms.${m}[${l}] must hold ${tokenCounts.length} sequences`;
      for (let s = 0; s < tokenCounts.length; s++) {
        if (!isArrayOfLength(perSeq[s], tokenCounts[s] as number, isNonNegative)) {
          return `norms.${m}[${l}][${s}] must hold ${tokenCounts[s]} finite non-negative numbers`;
        }
      }
    }
  }
  return undefined;
}

function checkImportance(importance: unknown, modules: string[], layerCount: number, signed: boolean): string | undefined {
  if (!isObject(importance)) return "importance is not an object";
  const raw = signed ? isFiniteNumber : isNonNegative;
  const what = signed ? "finite numbers" : "numbers ≥ 0";
  if (!isArrayOfLength(importance.per_layer, layerCount, isNonNegative)) return `importance.per_layer must hold ${layerCount} numbers ≥ 0`;
  if (!isArrayOfLength(importance.per_layer_raw, layerCount, raw)) return `importance.per_layer_raw must hold ${layerCount} ${what}`;
  return checkPerModule(importance.per_module, modules, layerCount, "per_module", isNonNegative, "numbers ≥ 0") ?? checkPerModule(importance.per_module_raw, modules, layerCount, "per_module_raw", raw, what);
}

function checkPerModule(x: unknown, modules: string[], layerCount: number, name: string, check: (v: unknown) => v is number, what: string): string | undefined {
  if (!isObject(x)) return `importance.${name} is not an object`;
  const table: Fields = x;
  for (const m of modules) {
    if (!isArrayOfLength(table[m], layerCount, check)) return `importance.${name}.${m} must hold ${layerCount} ${what}`;
  }
  return undefined;
}
