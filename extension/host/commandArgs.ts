/**
 * The arguments a command receives: nothing (palette), `(uri, uris)` (Explorer context menu), or one options
 * object (another command, a keybinding's `args`, or a test calling executeCommand). Pure: a Uri is recognised
 * by its shape, so this is unit-tested without VS Code. Invalid options are refused with a clear message.
 */
import { isThreshold } from "../viewModel/protocol";
import { UserError } from "./errorText";
import type { AdapterFormat, PruneMode } from "../core/adapter/dropRecord";
import { ENGINE_DEVICES, type EngineDevice } from "../core/torch/engineChoice";

/** What a command was invoked with. */
export interface Invocation {
  /** File system paths of the Explorer selection (the clicked item first), if any. */
  resources: string[];
  /** The options object, if the command was called with one. */
  options: Record<string, unknown>;
}

/** Options of loraDrop.profile. */
export interface ProfileArgs {
  model?: string;
  adapter?: string;
  data?: string;
  maxExamples?: number;
  maxTokens?: number;
  device?: EngineDevice;
  /** Open the panel when done (default true). */
  open?: boolean;
}

/** Options of loraDrop.prune. */
export interface PruneArgs {
  adapter?: string;
  profile?: string;
  threshold?: number;
  mode?: PruneMode;
  format?: AdapterFormat;
  /** Replace an existing output folder without asking. */
  overwrite?: boolean;
}

/** Options of loraDrop.train. */
export interface TrainArgs {
  model?: string;
  data?: string;
  /** Continue this adapter instead of starting a new LoRA. */
  adapter?: string;
  /** The adapter folder to write (default: under the output folder's adapters/). */
  out?: string;
  epochs?: number;
  overwrite?: boolean;
}

/** Options of loraDrop.runPipeline. */
export interface PipelineArgs {
  model?: string;
  data?: string;
  out?: string;
  threshold?: number;
  overwrite?: boolean;
}

/** Options of loraDrop.createDemo. */
export interface DemoArgs {
  /** The folder to write into (default: asked); a folder that holds something gets a new `lora-drop-demo` inside. */
  folder?: string;
  /** Open the written workspace (default true). */
  open?: boolean;
}

/** Options of loraDrop.openProfile. */
export interface OpenProfileArgs {
  profile?: string;
  compare?: string;
}

/** Splits raw command arguments into the Explorer selection and an options object. */
export function parseInvocation(args: readonly unknown[]): Invocation {
  const [first, second] = args;
  if (isUriLike(first)) {
    const all = Array.isArray(second) ? second.filter(isUriLike) : [];
    const paths = [first, ...all.filter((u) => u.fsPath !== first.fsPath)].map((u) => u.fsPath);
    return { resources: paths, options: {} };
  }
  if (typeof first === "object" && first !== null && !Array.isArray(first)) return { resources: [], options: first as Record<string, unknown> };
  if (first === undefined || first === null) return { resources: [], options: {} };
  throw new UserError(`Unexpected command argument ${JSON.stringify(first)?.slice(0, 80)}.`);
}

/** Reads loraDrop.profile's options. */
export function profileArgs(o: Record<string, unknown>): ProfileArgs {
  return {
    ...opt(o, "model", isString),
    ...opt(o, "adapter", isString),
    ...opt(o, "data", isString),
    ...opt(o, "maxExamples", isPositiveInt),
    ...opt(o, "maxTokens", isPositiveInt),
    ...opt(o, "device", (v): v is EngineDevice => typeof v === "string" && (ENGINE_DEVICES as readonly string[]).includes(v)),
    ...opt(o, "open", isBoolean),
  };
}

/** Reads loraDrop.prune's options. */
export function pruneArgs(o: Record<string, unknown>): PruneArgs {
  return {
    ...opt(o, "adapter", isString),
    ...opt(o, "profile", isString),
    ...opt(o, "threshold", isThreshold),
    ...opt(o, "mode", (v): v is PruneMode => v === "share" || v === "drop"),
    ...opt(o, "format", (v): v is AdapterFormat => v === "peft" || v === "compact"),
    ...opt(o, "overwrite", isBoolean),
  };
}

/** Reads loraDrop.train's options. */
export function trainArgs(o: Record<string, unknown>): TrainArgs {
  return {
    ...opt(o, "model", isString),
    ...opt(o, "data", isString),
    ...opt(o, "adapter", isString),
    ...opt(o, "out", isString),
    ...opt(o, "epochs", isPositiveInt),
    ...opt(o, "overwrite", isBoolean),
  };
}

/** Reads loraDrop.runPipeline's options. */
export function pipelineArgs(o: Record<string, unknown>): PipelineArgs {
  return {
    ...opt(o, "model", isString),
    ...opt(o, "data", isString),
    ...opt(o, "out", isString),
    ...opt(o, "threshold", isThreshold),
    ...opt(o, "overwrite", isBoolean),
  };
}

/** Reads loraDrop.createDemo's options. */
export function demoArgs(o: Record<string, unknown>): DemoArgs {
  return { ...opt(o, "folder", isString), ...opt(o, "open", isBoolean) };
}

/** Reads loraDrop.openProfile's options. */
export function openProfileArgs(o: Record<string, unknown>): OpenProfileArgs {
  return { ...opt(o, "profile", isString), ...opt(o, "compare", isString) };
}

/** Parses the threshold typed into the input box; returns an error text or the number. */
export function parseThresholdInput(text: string): number | string {
  const t = Number(text.trim().replace(",", "."));
  if (text.trim() === "" || !isThreshold(t)) return "Enter a number greater than 0 and at most 1 (e.g. 0.9).";
  return t;
}

/** True for a VS Code Uri (or anything shaped like one) on the local file system. */
export function isUriLike(x: unknown): x is { fsPath: string; scheme: string } {
  return typeof x === "object" && x !== null && typeof (x as { fsPath?: unknown }).fsPath === "string" && typeof (x as { scheme?: unknown }).scheme === "string";
}

function opt<K extends string, T>(o: Record<string, unknown>, key: K, valid: (v: unknown) => v is T): { [P in K]?: T } {
  const v = o[key];
  if (v === undefined) return {};
  if (!valid(v)) throw new UserError(`Invalid option ${key}: ${JSON.stringify(v)?.slice(0, 80)}.`);
  return { [key]: v } as { [P in K]?: T };
}

function isString(v: unknown): v is string {
  return typeof v === "string" && v.length > 0;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
}

function isBoolean(v: unknown): v is boolean {
  return typeof v === "boolean";
}
