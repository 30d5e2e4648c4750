/**
 * Reading and writing profile files, with validation on read so that a hand-edited or foreign file gives a clear
 * error instead of a crash deep inside the panel or the pruner.
 */
import { LoraDropError, describeValue } from "../util/errors";
import { ProfileFile, PROFILE_SCHEMA, PROFILE_VERSION, CRITERIA, SIGNED_CRITERIA } from "./profileSchema";
import { ENGINE_CHOICES } from "../torch/engineChoice";
import { PRECISIONS } from "../quant/precision";
import { writeFileAtomic } from "../io/atomicWrite";
import { readRegularText } from "../io/regularFile";

/** Writes a profile atomically. */
export function writeProfile(file: string, profile: ProfileFile): void {
  writeFileAtomic(file, JSON.stringify(profile));
}

/** Checks that a parsed value is a profile this version reads; returns it typed. */
export function validateProfile(raw: unknown, file = "profile"): ProfileFile {
  const bad = (msg: string, field?: string): never => { throw new LoraDropError("PROFILE_INVALID", msg, file, field); };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad("not a JSON object");
  const p = raw as Partial<ProfileFile>;
  if (p.schema !== PROFILE_SCHEMA) bad(`not a LoRA-drop profile (schema ${describeValue(p.schema)})`, "schema");
  if (p.version !== PROFILE_VERSION) bad(`profile version ${describeValue(p.version)} is not supported (this version reads ${PROFILE_VERSION})`, "version");
  // Files written before the field existed have none, and are onnx profiles.
  if (p.engine !== undefined && !(ENGINE_CHOICES as readonly unknown[]).includes(p.engine)) bad(`engine ${describeValue(p.engine)} is not one of ${ENGINE_CHOICES.join(", ")}`, "engine");
  // Files written before the field existed have none, and ran in fp32.
  if (p.precision !== undefined && !(PRECISIONS as readonly unknown[]).includes(p.precision)) bad(`precision ${describeValue(p.precision)} is not one of ${PRECISIONS.join(", ")}`, "precision");
  if (!CRITERIA.includes(p.criterion!)) bad(`criterion ${describeValue(p.criterion)} is unknown (known: ${CRITERIA.join(", ")})`, "criterion");
  // Raw ablation values are loss increases, negative where a layer's LoRA hurts; the normalised ones never are.
  const signed = SIGNED_CRITERIA.includes(p.criterion!);
  if (!Array.isArray(p.layers) || !p.layers.every((l) => Number.isInteger(l))) bad("layers must be a list of integers", "layers");
  if (!Array.isArray(p.modules) || !p.modules.every((m) => typeof m === "string")) bad("modules must be a list of names", "modules");
  if (new Set(p.modules).size !== p.modules!.length) bad("modules must not repeat a name", "modules");
  const L = p.layers!.length;
  const imp = p.importance;
  if (typeof imp !== "object" || imp === null) bad("importance must be an object", "importance");
  const numList = (v: unknown, n: number, anySign = false) => Array.isArray(v) && v.length === n && v.every((x) => typeof x === "number" && Number.isFinite(x) && (anySign || x >= 0));
  const rawWord = signed ? "finite" : "non-negative";
  if (!imp || !numList(imp.per_layer, L) || !numList(imp.per_layer_raw, L, signed)) bad(`importance.per_layer must be ${L} non-negative numbers and per_layer_raw ${L} ${rawWord} numbers`, "importance");
  for (const m of p.modules!) {
    if (!numList(imp!.per_module?.[m], L) || !numList(imp!.per_module_raw?.[m], L, signed)) bad(`importance.per_module.${m} must be ${L} non-negative numbers (per_module_raw: ${rawWord})`, "importance.per_module");
    if (!numList(p.adapter?.params?.[m], L)) bad(`adapter.params.${m} must be ${L} non-negative numbers`, "adapter.params");
  }
  if (p.ablation !== undefined && (typeof p.ablation !== "object" || p.ablation === null || !Number.isFinite(p.ablation.full_loss) || typeof p.ablation.per_module !== "boolean")) {
    bad("ablation must hold full_loss (a number) and per_module (true or false)", "ablation");
  }
  if (!Array.isArray(p.sequences)) bad("sequences must be a list", "sequences");
  p.sequences!.forEach((s, i) => {
    if (typeof s !== "object" || s === null) bad(`sequence ${i} is not an object`, `sequences[${i}]`);
    if (!Array.isArray(s.ids) || !Array.isArray(s.tokens) || s.ids.length !== s.tokens.length || !s.tokens.every((t) => typeof t === "string")) {
      bad(`sequence ${i} must have as many token strings as ids`, `sequences[${i}]`);
    }
    if (!s.ids.every((id) => Number.isInteger(id) && id >= 0)) bad(`sequence ${i} ids must be non-negative integers`, `sequences[${i}].ids`);
    if (s.special !== undefined && (!Array.isArray(s.special) || s.special.length !== s.ids.length || !s.special.every((f) => typeof f === "boolean"))) {
      bad(`sequence ${i} must have one special flag per token`, `sequences[${i}].special`);
    }
  });
  if (p.norms !== undefined) {
    if (typeof p.norms !== "object" || p.norms === null || Array.isArray(p.norms)) bad("norms must be an object", "norms");
    for (const m of p.modules!) {
      const nm = p.norms![m];
      if (!Array.isArray(nm) || nm.length !== L) bad(`norms.${m} must have one entry per layer`, `norms.${m}`);
      nm!.forEach((perSeq, l) => {
        if (!Array.isArray(perSeq) || perSeq.length !== p.sequences!.length) bad(`norms.${m}[${l}] must have one entry per sequence`, `norms.${m}`);
        perSeq.forEach((row, s) => {
          if (!Array.isArray(row) || row.length !== p.sequences![s]!.ids.length) bad(`norms.${m}[${l}][${s}] must have one value per token`, `norms.${m}`);
          if (!row.every((v) => typeof v === "number" && Number.isFinite(v) && v >= 0)) bad(`norms.${m}[${l}][${s}] must hold non-negative numbers`, `norms.${m}`);
        });
      });
    }
  }
  checkImportance(p as ProfileFile, bad);
  return p as ProfileFile;
}

/** Relative tolerance of the importance checks (a profile written by this tool agrees to the last bit). */
const IMPORTANCE_TOLERANCE = 1e-6;

/**
 * The importance numbers must be the ones their raw values give: per layer, the sum over modules; normalised, each
 * raw value over the total, summing to 1 (or all zero when every raw value is). A hand-edited profile whose
 * importance was changed without its raw values would otherwise prune by numbers nobody measured.
 */
function checkImportance(p: ProfileFile, bad: (msg: string, field?: string) => never): void {
  // prune reads the model folder from here when --model is not given.
  if (typeof p.model !== "object" || p.model === null || typeof p.model.path !== "string" || p.model.path === "") bad(`model.path must be the model folder's path, got ${describeValue(p.model?.path)}`, "model.path");
  if (new Set(p.layers).size !== p.layers.length || p.layers.some((l) => l < 0)) bad("layers must be distinct non-negative layer indices", "layers");
  const close = (a: number, b: number) => Math.abs(a - b) <= IMPORTANCE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b), 1e-30);
  const imp = p.importance;
  // Normalised importance counts only the positive part of raw values (which only signed criteria can have).
  const normalised = (rawValues: number[], norm: number[], field: string) => {
    const raw = rawValues.map((g) => Math.max(g, 0));
    const total = raw.reduce((a, b) => a + b, 0);
    const sum = norm.reduce((a, b) => a + b, 0);
    if (total > 0 && Math.abs(sum - 1) > IMPORTANCE_TOLERANCE) bad(`${field} sums to ${sum}, not 1`, field);
    norm.forEach((v, i) => {
      const want = total > 0 ? raw[i]! / total : 0;
      if (!(Math.abs(v - want) <= IMPORTANCE_TOLERANCE)) bad(`${field}[${i}] is ${v} but its raw value gives ${want}`, field);
    });
  };
  for (const m of p.modules) normalised(imp.per_module_raw[m]!, imp.per_module[m]!, `importance.per_module.${m}`);
  // Ablation removes a layer's LoRA as a whole: its per-layer value is measured, not the sum over modules.
  if (!SIGNED_CRITERIA.includes(p.criterion)) {
    imp.per_layer_raw.forEach((g, i) => {
      const sum = p.modules.reduce((a, m) => a + imp.per_module_raw[m]![i]!, 0);
      if (!close(g, sum)) bad(`importance.per_layer_raw[${i}] is ${g} but the modules' raw values sum to ${sum}`, "importance.per_layer_raw");
    });
  }
  normalised(imp.per_layer_raw, imp.per_layer, "importance.per_layer");
  for (const m of p.modules) {
    if (!p.adapter.params[m]!.every((n) => Number.isSafeInteger(n))) bad(`adapter.params.${m} must hold whole parameter counts`, "adapter.params");
  }
}

/** Largest profile file read; checked before reading (a profile of 64 sequences × 128 tokens × 7 modules × 80 layers is about 60 MB). */
export const MAX_PROFILE_BYTES = 256 * 1024 * 1024;

/** Reads and validates a profile file. */
export function readProfile(file: string): ProfileFile {
  const text = readRegularText(file, { maxBytes: MAX_PROFILE_BYTES, tooLargeCode: "PROFILE_INVALID", what: "a profile" });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LoraDropError("PROFILE_INVALID", `not valid JSON (${(e as Error).message})`, file);
  }
  return validateProfile(raw, file);
}
