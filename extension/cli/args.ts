/**
 * Option parsers and options shared by the CLI commands. Parsers throw commander's InvalidArgumentError, so a bad
 * value is reported as a usage error naming the option, not as an internal error.
 */
import { Option, InvalidArgumentError } from "commander";
import { parseSize } from "../core/stream/memoryBudget";
import { maxThreads } from "../core/runtime/session";
import { PRECISIONS } from "../core/quant/precision";

/** The memory budget of layer streaming, shared by profile and train. */
export function memoryBudgetOption(): Option {
  return new Option("--memory-budget <size>", "onnx engine: memory the streamed layers may use, e.g. 6G (default: half the available memory; " +
    "on a GPU provider at most 80 % of the GPU's free memory where nvidia-smi reports it)").argParser(parseSize);
}

/** The base model's precision (onnx engine), shared by profile and sweep. */
export function precisionOption(): Option {
  return new Option("--precision <p>", "onnx engine: the base model's projections in fp32, int8 (the fast path: importance within 5e-3 of fp32) or int4; " +
    "quantized weights are cached in $LORA_DROP_CACHE/quant (default ~/.cache/lora-drop/quant)").choices(PRECISIONS).default("fp32");
}

/**
 * A former spelling of an option, still accepted but left out of --help (e.g. `--max-length` for `--max-tokens`):
 * the command reads it only when the current spelling was not given.
 */
export function formerOption(flags: string, parse: (v: string) => unknown): Option {
  return new Option(flags).hideHelp().argParser(parse);
}

/** Parses a positive integer option. */
export function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got ${v}`);
  return n;
}

/** Parses a non-negative integer option. */
export function nonNegIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || v.trim() === "") throw new InvalidArgumentError(`expected a non-negative integer, got ${v}`);
  return n;
}

/** Parses `--threads`: a positive integer no larger than the machine allows (see maxThreads). */
export function threadsArg(v: string): number {
  const n = intArg(v);
  if (n > maxThreads()) throw new InvalidArgumentError(`expected at most ${maxThreads()} threads (four per CPU of this machine), got ${v}`);
  return n;
}

/** Parses a number option. */
export function floatArg(v: string): number {
  const n = Number(v);
  // Number("") is 0: an empty value is not a number.
  if (!Number.isFinite(n) || v.trim() === "") throw new InvalidArgumentError(`expected a number, got ${JSON.stringify(v)}`);
  return n;
}

/** Parses a threshold in (0, 1]. */
export function thresholdArg(v: string): number {
  const t = Number(v);
  if (!(t > 0 && t <= 1) || v.trim() === "") throw new InvalidArgumentError(`expected a number in (0, 1], got ${v}`);
  return t;
}
