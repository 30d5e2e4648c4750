/**
 * Where a LoRA-drop adapter keeps its record, and the checks that the record tells the truth. New adapters carry it
 * twice: the sidecar `lora_drop.json` and the safetensors `__metadata__` (`lora_drop.<field>` JSON strings), which
 * must agree; adapters written before carry it under adapter_config.json's `lora_drop` key, still read. A record
 * is then checked against the weights it describes: layers in range, every layer that carries a LoRA kept or
 * shared, no shared weights in drop mode, compact tensors only where the record shares layers in the compact form.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError, describeValue } from "../util/errors";
import { readJsonFile } from "../io/jsonFile";
import { LoraDropRecord, parseLoraDropRecord, layersFor, RECORD_FILE } from "./dropRecord";

/** A record and the file it was read from (named by every later error about it). */
export interface RecordSource {
  record: LoraDropRecord;
  file: string;
}

/** The record as stored in safetensors metadata: one JSON string per `lora_drop.<field>` key; undefined when none. */
function fromMetadata(weightsFile: string, metadata: Record<string, string>): LoraDropRecord | undefined {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!k.startsWith("lora_drop.")) continue;
    try {
      fields[k.slice("lora_drop.".length)] = JSON.parse(v);
    } catch {
      throw new LoraDropError("ADAPTER_INVALID", `metadata ${k} is not JSON (${describeValue(v)})`, weightsFile, k);
    }
  }
  return Object.keys(fields).length ? parseLoraDropRecord(weightsFile, fields, "__metadata__ lora_drop.") : undefined;
}

/**
 * Reads an adapter's record: lora_drop.json, else the safetensors metadata, else (older adapters) the `lora_drop`
 * key of adapter_config.json; undefined for a plain LoRA adapter. Two copies that disagree are an error.
 */
export function readRecord(dir: string, configRaw: Record<string, unknown>, configFile: string, weightsFile: string, metadata: Record<string, string>): RecordSource | undefined {
  const sidecar = path.join(dir, RECORD_FILE);
  const found: RecordSource[] = [];
  if (fs.existsSync(sidecar) || isLink(sidecar)) found.push({ record: parseLoraDropRecord(sidecar, readJsonFile(sidecar, "ADAPTER_INVALID"), "")!, file: sidecar });
  const meta = fromMetadata(weightsFile, metadata);
  if (meta) found.push({ record: meta, file: weightsFile });
  const legacy = parseLoraDropRecord(configFile, configRaw.lora_drop);
  if (legacy) found.push({ record: legacy, file: configFile });
  if (found.length === 0) return undefined;
  const first = found[0]!;
  for (const other of found.slice(1)) {
    for (const k of ["kept_layers", "shared_layers", "mode", "format"] as const) {
      if (JSON.stringify(other.record[k]) !== JSON.stringify(first.record[k])) {
        throw new LoraDropError("ADAPTER_INVALID", `the lora_drop record's ${k} is ${describeValue(first.record[k])} here but ${describeValue(other.record[k])} in ${other.file}; the two copies must agree`, first.file, k);
      }
    }
  }
  return first;
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** What the weights hold: the (layer, module) pairs with their own LoRA and the modules with a compact shared pair. */
export interface WeightsLayout {
  own: { layer: number; module: string }[];
  compact: string[];
  numLayers: number;
  /** The modules a layer of this architecture has. */
  modules: readonly string[];
}

/** Throws ADAPTER_INVALID (naming the record's file) where the record contradicts the weights or the model. */
export function checkRecordAgainstWeights(src: RecordSource, w: WeightsLayout): void {
  const { record, file } = src;
  const fail = (field: string, msg: string): never => { throw new LoraDropError("ADAPTER_INVALID", `lora_drop.${field}: ${msg}`, file, `lora_drop.${field}`); };
  const perModule = !Array.isArray(record.kept_layers);
  for (const field of ["kept_layers", "shared_layers"] as const) {
    const sets = record[field];
    const lists = Array.isArray(sets) ? [["", sets] as const] : Object.entries(sets);
    for (const [m, layers] of lists) {
      if (m && !w.modules.includes(m)) fail(field, `names module ${describeValue(m)}, which a layer of this model does not have (${w.modules.join(", ")})`);
      const out = layers.find((l) => l >= w.numLayers);
      if (out !== undefined) fail(field, `layer ${out}${m ? ` (${m})` : ""} is out of range: the model has layers 0–${w.numLayers - 1}`);
    }
  }
  const withLora = (layer: number, module: string) => w.own.some((o) => o.layer === layer && (!perModule || o.module === module))
    || (record.mode === "share" && w.compact.includes(module) && layersFor(record.shared_layers, module).includes(layer));
  for (const o of w.own) {
    const kept = layersFor(record.kept_layers, o.module).includes(o.layer);
    const shared = layersFor(record.shared_layers, o.module).includes(o.layer);
    if (!kept && !shared) fail("kept_layers", `layer ${o.layer} ${o.module} carries a LoRA but the record neither keeps nor shares it`);
    if (shared && record.mode === "drop") fail("mode", `is "drop" but the shared (dropped) layer ${o.layer} still carries a ${o.module} LoRA`);
  }
  const modulesOf = (sets: LoraDropRecord["kept_layers"]) => (Array.isArray(sets) ? [...new Set(w.own.map((o) => o.module).concat(w.compact))] : Object.keys(sets));
  for (const field of ["kept_layers", "shared_layers"] as const) {
    if (field === "shared_layers" && record.mode === "drop") continue;
    for (const m of perModule ? modulesOf(record[field]) : [""]) {
      const missing = layersFor(record[field], m).find((l) => (perModule ? !withLora(l, m) : !w.own.some((o) => o.layer === l) && !w.compact.some((c) => withLora(l, c))));
      if (missing !== undefined) fail(field, `layer ${missing}${m ? ` (${m})` : ""} is listed but carries no LoRA in the weights`);
    }
  }
  for (const m of w.compact) {
    if (record.mode !== "share" || layersFor(record.shared_layers, m).length === 0) fail("shared_layers", `the weights hold a compact shared ${m} LoRA, but the record shares no ${m} layer`);
    if (record.format !== "compact") fail("format", `is ${describeValue(record.format)} but the weights hold a compact shared ${m} LoRA`);
  }
  if (record.format === "compact" && record.mode === "share" && w.compact.length === 0 && w.own.length > 0 && layersAny(record.shared_layers)) {
    fail("format", "is \"compact\" but the weights hold no compact shared LoRA");
  }
}

function layersAny(sets: LoraDropRecord["shared_layers"]): boolean {
  return Array.isArray(sets) ? sets.length > 0 : Object.values(sets).some((l) => l.length > 0);
}
