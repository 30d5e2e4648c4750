/**
 * The protocol between the Node side and the Python package `lora_drop_torch` (python/lora_drop_torch/): one
 * request file in, JSON lines out. Every stdout line of the child is one object with a `type`; each is validated
 * here before anything acts on it, and a line that does not fit is an ENGINE_FAILED error (never a guess).
 */
import { ErrorCode, LoraDropError, describeValue } from "../util/errors";

/** Version of the request and answer formats; the Python side refuses another. */
export const TORCH_PROTOCOL_VERSION = 1;

/** Model precisions the torch engine runs in. */
export const TORCH_DTYPES = ["float32", "bfloat16", "float16"] as const;
/** One of TORCH_DTYPES. */
export type TorchDtype = (typeof TORCH_DTYPES)[number];
/** Devices the torch engine runs on (`auto`: CUDA, else Apple's MPS, else the CPU). */
export const TORCH_DEVICES = ["auto", "cuda", "mps", "cpu"] as const;
/** One of TORCH_DEVICES. */
export type TorchDevice = (typeof TORCH_DEVICES)[number];

/** One LoRA module as the Node side names it: PEFT's module name (without `base_model.model.`), and the parameter pair it is bound to. */
export interface TorchLoraEntry { name: string; layer: number; module: string; param: string }

/** Fields of every request. */
export interface TorchRequestBase {
  version: typeof TORCH_PROTOCOL_VERSION;
  model: string;
  architecture: string;
  task: "causal-lm" | "seq-cls";
  dtype: TorchDtype;
  device: TorchDevice;
  threads?: number;
  /** The tokenised examples (JSON lines, see examplesFile.ts). */
  examples: string;
  /** The dataset the examples came from, for messages. */
  data: string;
  padTokenId: number;
  /** The LoRA modules PEFT must have, in the order results are given in. */
  loras: TorchLoraEntry[];
  /** adapter_config.json fields that make PEFT's LoraConfig (keys PEFT does not know are left out there). */
  loraConfig: Record<string, unknown>;
  /** A folder the engine writes its result files into (the Node side creates and removes it). */
  outputDir: string;
}

/** The criteria the torch engine measures itself (ablation is measured through loss evaluations). */
export type TorchCriterion = "output" | "weight" | "gradient";

/** Profile request: the criteria to measure over the example batches (indices into the examples file). */
export interface TorchProfileRequest extends TorchRequestBase {
  command: "profile";
  adapter: string;
  criteria: TorchCriterion[];
  batches: number[][];
}

/** Train request: the step plan (per optimiser step, its micro-batches' example indices) and the optimiser settings. */
export interface TorchTrainRequest extends TorchRequestBase {
  command: "train";
  /** A PEFT-format adapter to start from (the Node side writes it), or null for PEFT's fresh initialisation. */
  initAdapter: string | null;
  trainHead: boolean;
  plan: number[][][];
  lr: number; schedule: "linear" | "cosine" | "constant"; warmupSteps: number; weightDecay: number; maxGradNorm: number; seed: number;
  checkpointEvery: number; checkpointDir: string | null; resume: boolean;
  /** The settings a checkpoint must have been made with to be resumed. */
  fingerprint: Record<string, unknown>;
  /** After training, the mean loss over these batches (example indices) with the trained values, dropout off. */
  evalBatches?: number[][];
}

/** One adapter to evaluate: a PEFT folder and its adapter_config.json fields. */
export interface TorchEvaluateAdapter { dir: string; loraConfig: Record<string, unknown> }

/** Evaluate request: the base model (null) and adapters, each over the same example batches, dropout off. */
export interface TorchEvaluateRequest extends Omit<TorchRequestBase, "loras" | "loraConfig"> {
  command: "evaluate";
  adapters: (TorchEvaluateAdapter | null)[];
  batches: number[][];
}

/**
 * Evaluate-sets request: the loss of many LoRA configurations of one adapter (PEFT loads it once: its layout, and a
 * classifier's head), over the same batches. `sets[i][j]` is configuration i's pair on `loras[j]`: the keys of its
 * A and B in `tensorsFile` (a safetensors file of float32 tensors), or null for no LoRA there.
 */
export interface TorchEvaluateSetsRequest extends TorchRequestBase {
  command: "evaluate-sets";
  adapter: string;
  tensorsFile: string;
  sets: ([string, string] | null)[][];
  batches: number[][];
}

/** Any request. */
export type TorchRequest = TorchProfileRequest | TorchTrainRequest | TorchEvaluateRequest | TorchEvaluateSetsRequest;

/** Progress: `step` of `total` units. */
export interface TorchProgressLine { type: "progress"; step: number; total: number; message?: string }
/** A log message for the user. */
export interface TorchLogLine { type: "log"; level: "info" | "warn"; message: string }
/** One optimiser step. */
export interface TorchStepLine { type: "step"; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; tokensPerSecond: number }
/** A failure: an ErrorCode of the engine, or INTERNAL for an unexpected Python exception; `rank` when not rank 0. */
export interface TorchErrorLine { type: "error"; code: ErrorCode | "INTERNAL"; message: string; file?: string; field?: string; rank?: number }
/** What one criterion measured: one raw sum per LoRA module (request order), and the per-token norms file (output). */
export interface TorchCriterionResult { raw: number[]; normsFile?: string }
/** Peak memory of the answering process, on every result line: resident bytes, and on CUDA the allocator's peak. */
export interface TorchPeakMemory { peakRssBytes?: number; gpuPeakBytes?: number }
/** The answer to a profile request. */
export interface TorchProfileResult extends TorchPeakMemory { type: "result"; command: "profile"; device: string; dtype: string; seconds: number; criteria: Partial<Record<TorchCriterion, TorchCriterionResult>> }
/** The answer to a train request: where the trained tensors are, and the per-step losses. */
export interface TorchTrainResult extends TorchPeakMemory {
  type: "result"; command: "train"; device: string; dtype: string; tensorsFile: string; steps: number;
  losses: { step: number; loss: number; lr: number }[]; tokens: number; trainableParams: number; headParams: number; worldSize: number;
  /** The mean loss over the request's evalBatches after training, when it asked for one. */
  finalEvalLoss?: number;
}
/** What one evaluation measured: the mean loss, and for a classifier the predicted class of every example (-1: not in a batch). */
export interface TorchEvaluation { loss: number; predicted?: number[] }
/** The answer to an evaluate request: one evaluation per entry of `adapters`, in order. */
export interface TorchEvaluateResult extends TorchPeakMemory { type: "result"; command: "evaluate"; device: string; dtype: string; seconds: number; evaluations: TorchEvaluation[] }
/** The answer to an evaluate-sets request: one evaluation per configuration, in order. */
export interface TorchEvaluateSetsResult extends Omit<TorchEvaluateResult, "command"> { command: "evaluate-sets" }
/** Any result line. */
export type TorchResult = TorchProfileResult | TorchTrainResult | TorchEvaluateResult | TorchEvaluateSetsResult;
/** Any line the engine may write. */
export type TorchLine = TorchProgressLine | TorchLogLine | TorchStepLine | TorchErrorLine | TorchResult;

/** The error codes the Python side may send (extension/core/errors.ts's, plus INTERNAL). */
const KNOWN_CODES = new Set<string>([
  "FILE_NOT_FOUND", "FILE_UNREADABLE", "TENSOR_MISSING", "CONFIG_INVALID", "UNSUPPORTED_ARCHITECTURE", "ADAPTER_INVALID",
  "ADAPTER_SHAPE_MISMATCH", "DATASET_INVALID", "DATASET_EMPTY", "SAFETENSORS_SHAPE_MISMATCH", "OUTPUT_EXISTS", "WRITE_FAILED",
  "NUMERICAL", "DEVICE_UNAVAILABLE", "CANCELLED", "INVALID_ARGUMENT", "MEMORY_BUDGET", "MISSING_DEPENDENCY", "INTERNAL",
]);

/** Parses and validates one stdout line of the engine; `source` names the process in errors. */
export function parseTorchLine(line: string, source: string): TorchLine {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw bad(source, `wrote a line that is not JSON: ${describeValue(line, 120)}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw bad(source, `wrote a line that is not an object: ${describeValue(line, 120)}`);
  const v = new Fields(o as Record<string, unknown>, source);
  switch (v.str("type")) {
    case "progress": return { type: "progress", step: v.num("step"), total: v.num("total"), ...v.optStr("message", "message") };
    case "log": return { type: "log", level: v.oneOf("level", ["info", "warn"] as const), message: v.str("message") };
    case "step":
      return { type: "step", step: v.int("step"), totalSteps: v.int("totalSteps"), loss: v.num("loss"), lr: v.num("lr"), gradNorm: v.num("gradNorm"), tokensPerSecond: v.num("tokensPerSecond") };
    case "error": {
      const code = v.str("code");
      if (!KNOWN_CODES.has(code)) throw bad(source, `sent an unknown error code ${describeValue(code)}`);
      return { type: "error", code: code as TorchErrorLine["code"], message: v.str("message"), ...v.optStr("file", "file"), ...v.optStr("field", "field"), ...(v.has("rank") ? { rank: v.int("rank") } : {}) };
    }
    case "result": return parseResult(v);
    default: throw bad(source, `sent a line of unknown type ${describeValue((o as Record<string, unknown>).type)}`);
  }
}

function parseResult(v: Fields): TorchResult {
  const memory: TorchPeakMemory = { ...(v.has("peakRssBytes") ? { peakRssBytes: v.int("peakRssBytes") } : {}), ...(v.has("gpuPeakBytes") ? { gpuPeakBytes: v.int("gpuPeakBytes") } : {}) };
  return { ...parseResultOf(v), ...memory };
}

function parseResultOf(v: Fields): TorchResult {
  const command = v.oneOf("command", ["profile", "train", "evaluate", "evaluate-sets"] as const);
  if (command === "evaluate" || command === "evaluate-sets") {
    const evaluations = v.list("evaluations").map((x, i) => {
      if (typeof x !== "object" || x === null) throw bad(v.source, `sent evaluations[${i}] that is not an object`);
      const f = new Fields(x as Record<string, unknown>, v.source);
      return { loss: f.num("loss"), ...(f.has("predicted") ? { predicted: f.list("predicted").map((c) => classIndex(c, v.source)) } : {}) };
    });
    return { type: "result", command, device: v.str("device"), dtype: v.str("dtype"), seconds: v.num("seconds"), evaluations };
  }
  if (command === "profile") {
    const criteria: TorchProfileResult["criteria"] = {};
    const c = v.obj("criteria");
    for (const name of Object.keys(c.o)) {
      if (name !== "output" && name !== "weight" && name !== "gradient") throw bad(v.source, `sent a result for an unknown criterion ${describeValue(name)}`);
      const r = c.obj(name);
      criteria[name] = { raw: r.numList("raw"), ...r.optStr("normsFile", "normsFile") };
    }
    return { type: "result", command, device: v.str("device"), dtype: v.str("dtype"), seconds: v.num("seconds"), criteria };
  }
  const losses = v.list("losses").map((x, i) => {
    if (typeof x !== "object" || x === null) throw bad(v.source, `sent losses[${i}] that is not an object`);
    const f = new Fields(x as Record<string, unknown>, v.source);
    return { step: f.int("step"), loss: f.num("loss"), lr: f.num("lr") };
  });
  return {
    type: "result", command, device: v.str("device"), dtype: v.str("dtype"), tensorsFile: v.str("tensorsFile"), steps: v.int("steps"), losses,
    tokens: v.int("tokens"), trainableParams: v.int("trainableParams"), headParams: v.int("headParams"), worldSize: v.int("worldSize"),
    ...(v.has("finalEvalLoss") ? { finalEvalLoss: v.num("finalEvalLoss") } : {}),
  };
}

/** A predicted class: a non-negative integer, or -1 for an example no batch held. */
function classIndex(x: unknown, source: string): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < -1) throw bad(source, `sent a predicted class that is not a class index: ${describeValue(x)}`);
  return x;
}

function bad(source: string, what: string): LoraDropError {
  return new LoraDropError("ENGINE_FAILED", `the torch engine ${what}`, source);
}

/** Typed access to one object's fields; a missing or mistyped field is a protocol error naming it. */
class Fields {
  constructor(readonly o: Record<string, unknown>, readonly source: string) {}

  has(k: string): boolean {
    return this.o[k] !== undefined;
  }

  str(k: string): string {
    const x = this.o[k];
    if (typeof x !== "string") throw bad(this.source, `sent a ${describeValue(this.o.type)} line whose ${k} is not a string`);
    return x;
  }

  optStr<K extends string>(k: string, as: K): { [P in K]?: string } {
    return (this.has(k) ? { [as]: this.str(k) } : {}) as { [P in K]?: string };
  }

  num(k: string): number {
    const x = this.o[k];
    if (typeof x !== "number" || !Number.isFinite(x)) throw bad(this.source, `sent a ${describeValue(this.o.type)} line whose ${k} is not a finite number`);
    return x;
  }

  int(k: string): number {
    const x = this.num(k);
    if (!Number.isInteger(x) || x < 0) throw bad(this.source, `sent a ${describeValue(this.o.type)} line whose ${k} is not a count`);
    return x;
  }

  oneOf<T extends string>(k: string, options: readonly T[]): T {
    const x = this.str(k);
    if (!(options as readonly string[]).includes(x)) throw bad(this.source, `sent ${k} ${describeValue(x)}, not one of ${options.join(", ")}`);
    return x as T;
  }

  list(k: string): unknown[] {
    const x = this.o[k];
    if (!Array.isArray(x)) throw bad(this.source, `sent a ${describeValue(this.o.type)} line whose ${k} is not a list`);
    return x;
  }

  numList(k: string): number[] {
    return this.list(k).map((x) => {
      if (typeof x !== "number" || !Number.isFinite(x)) throw bad(this.source, `sent ${k} with a value that is not a finite number`);
      return x;
    });
  }

  obj(k: string): Fields {
    const x = this.o[k];
    if (typeof x !== "object" || x === null || Array.isArray(x)) throw bad(this.source, `sent a ${describeValue(this.o.type)} line whose ${k} is not an object`);
    return new Fields(x as Record<string, unknown>, this.source);
  }
}
