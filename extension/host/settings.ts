/**
 * The `loraDrop.*` settings, read and validated. Pure: the caller passes a getter (VS Code's
 * `WorkspaceConfiguration.get`), so the defaults and the validation are unit-tested without VS Code.
 */
import { parseSize, type StreamChoice } from "../core/stream/memoryBudget";
import { SETTINGS, SettingKey } from "./manifest";
import type { AdapterFormat, PruneMode } from "../core/adapter/dropRecord";
import type { EngineChoice, EngineDevice } from "../core/torch/engineChoice";
import type { TorchDtype } from "../core/torch/protocol";
import type { Precision } from "../core/quant/precision";

/** The settings, typed and within range. */
export interface Settings {
  /** The engine that profiles and trains. */
  engine: EngineChoice;
  /** The torch engine's interpreter; "" lets the host choose (pythonChoice.ts). */
  pythonPath: string;
  /** The torch engine's base-model precision. */
  dtype: TorchDtype;
  /** Where the model runs; a device the engine does not have is refused by the engine's own check. */
  device: EngineDevice;
  /** Bytes a model run may use, or undefined for the engine's automatic budget (the setting is blank). */
  memoryBudget: number | undefined;
  /** Layer streaming: `auto` streams when the model does not fit the memory budget. */
  stream: StreamChoice;
  /** The onnx engine's precision of the base model's projections (profile and sweep). */
  precision: Precision;
  threshold: number;
  sampleFraction: number;
  maxExamples: number;
  maxTokens: number;
  outputFolder: string;
  mode: PruneMode;
  outputFormat: AdapterFormat;
  train: { rank: number; loraAlpha: number; targetModules: string[]; epochs: number; learningRate: number; batchSize: number };
}

/** Reads one setting by its short name (e.g. "threshold"), as `getConfiguration("loraDrop").get` does. */
export type SettingGetter = (shortName: string) => unknown;

/** The settings with every value at its default, straight from the manifest. */
export function defaultSettings(): Settings {
  return readSettings(() => undefined).settings;
}

/**
 * Reads the settings. An invalid value (a hand-edited settings.json can hold anything) falls back to the
 * default and is named in `problems`, so the host can log it instead of failing a command later.
 */
export function readSettings(get: SettingGetter): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const pick = <T>(key: SettingKey, valid: (v: unknown) => v is T): T => {
    // getConfiguration("loraDrop").get takes the rest of the name, dots included ("train.rank").
    const value = get(key.slice("loraDrop.".length));
    const fallback = SETTINGS[key].default as unknown as T;
    if (value === undefined || value === null) return fallback;
    if (valid(value)) return value;
    problems.push(`${key} = ${JSON.stringify(value)} is not valid; using ${JSON.stringify(fallback)}`);
    return fallback;
  };
  const oneOf = <T extends string>(key: SettingKey) => (v: unknown): v is T =>
    typeof v === "string" && ((SETTINGS[key] as { enum?: readonly string[] }).enum ?? []).includes(v);
  const fraction = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0 && v <= 1;
  const positiveInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  const positive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;
  const nonNegative = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
  const moduleList = (v: unknown): v is readonly string[] =>
    Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(m)) && new Set(v).size === v.length;
  const relativeFolder = (v: unknown): v is string => typeof v === "string" && isRelativeFolder(v);
  const size = (v: unknown): v is string => typeof v === "string" && (v.trim() === "" || memoryBudgetBytes(v) !== undefined);
  // A path of some length, on one line: anything else cannot name an interpreter.
  const interpreter = (v: unknown): v is string => typeof v === "string" && v.length <= 4096 && !/[\0\n\r]/.test(v);
  return {
    settings: {
      engine: pick("loraDrop.engine", oneOf<EngineChoice>("loraDrop.engine")),
      pythonPath: pick("loraDrop.pythonPath", interpreter).trim(),
      dtype: pick("loraDrop.dtype", oneOf<TorchDtype>("loraDrop.dtype")),
      device: pick("loraDrop.device", oneOf<EngineDevice>("loraDrop.device")),
      memoryBudget: memoryBudgetBytes(pick("loraDrop.memoryBudget", size)),
      stream: pick("loraDrop.stream", oneOf<StreamChoice>("loraDrop.stream")),
      precision: pick("loraDrop.precision", oneOf<Precision>("loraDrop.precision")),
      threshold: pick("loraDrop.threshold", fraction),
      sampleFraction: pick("loraDrop.sampleFraction", fraction),
      maxExamples: pick("loraDrop.maxExamples", positiveInt),
      maxTokens: pick("loraDrop.maxTokens", positiveInt),
      outputFolder: pick("loraDrop.outputFolder", relativeFolder),
      mode: pick("loraDrop.mode", oneOf<PruneMode>("loraDrop.mode")),
      outputFormat: pick("loraDrop.outputFormat", oneOf<AdapterFormat>("loraDrop.outputFormat")),
      train: {
        rank: pick("loraDrop.train.rank", positiveInt),
        loraAlpha: pick("loraDrop.train.alpha", nonNegative),
        targetModules: [...pick("loraDrop.train.targetModules", moduleList)],
        epochs: pick("loraDrop.train.epochs", positiveInt),
        learningRate: pick("loraDrop.train.learningRate", positive),
        batchSize: pick("loraDrop.train.batchSize", positiveInt),
      },
    },
    problems,
  };
}

/**
 * The memory-budget and streaming fields of a model-running job, from the settings (no budget field when
 * automatic). They bound the onnx engine's layer streaming: a torch job gets none (the torch engine refuses them).
 */
export function streamingOf(settings: Pick<Settings, "memoryBudget" | "stream" | "engine">): { memoryBudget?: number; stream?: StreamChoice } {
  if (settings.engine === "torch") return {};
  return { ...(settings.memoryBudget !== undefined ? { memoryBudget: settings.memoryBudget } : {}), stream: settings.stream };
}

/**
 * The precision field of a profile or sweep job. Sent whatever the engine: the torch engine refuses a quantized
 * precision with a message naming --dtype, rather than the setting being ignored.
 */
export function precisionOf(settings: Pick<Settings, "precision">): { precision: Precision } {
  return { precision: settings.precision };
}

/** The engine fields of a job: the engine, and for torch its dtype and the interpreter the host chose (undefined: the engine's default). */
export function engineOf(settings: Pick<Settings, "engine" | "dtype">, python: string | undefined): { engine: EngineChoice; dtype?: TorchDtype; python?: string } {
  if (settings.engine !== "torch") return { engine: "onnx" };
  return { engine: "torch", dtype: settings.dtype, ...(python ? { python } : {}) };
}

/** Bytes of a `loraDrop.memoryBudget` value (the engine's size grammar), or undefined when blank or not a size. */
export function memoryBudgetBytes(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  try {
    const bytes = parseSize(text);
    return Number.isSafeInteger(bytes) ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True for a non-empty workspace-relative folder that stays inside the workspace: no absolute path, no drive
 * letter, no ".." segment. The output folder is joined to a workspace folder, so it must not climb out of it.
 */
export function isRelativeFolder(value: string): boolean {
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > 255 || trimmed !== value) return false;
  if (/^[/\\]/.test(value) || /^[A-Za-z]:/.test(value) || value.includes("\0")) return false;
  return value.split(/[/\\]/).every((seg) => seg !== "..");
}
