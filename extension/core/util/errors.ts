/**
 * Typed errors of the engine. The core throws these; only the CLI and the extension host turn them into
 * messages or exit codes. A message names the file and what is wrong, and where possible what to do.
 */

/** Machine-readable error codes, one per kind of failure. */
export type ErrorCode =
  | "FILE_NOT_FOUND"
  | "FILE_UNREADABLE"
  | "SAFETENSORS_TRUNCATED"
  | "SAFETENSORS_HEADER_TOO_LARGE"
  | "SAFETENSORS_HEADER_INVALID"
  | "SAFETENSORS_BAD_DTYPE"
  | "SAFETENSORS_BAD_OFFSETS"
  | "SAFETENSORS_SHAPE_MISMATCH"
  | "SAFETENSORS_DUPLICATE"
  | "TENSOR_MISSING"
  | "CONFIG_INVALID"
  | "UNSUPPORTED_ARCHITECTURE"
  | "ADAPTER_INVALID"
  | "ADAPTER_SHAPE_MISMATCH"
  | "DATASET_INVALID"
  | "DATASET_EMPTY"
  | "TOKEN_OUT_OF_RANGE"
  | "TOKENIZER_MISSING"
  | "TOKENIZER_INVALID"
  | "PROFILE_INVALID"
  | "SWEEP_INVALID"
  | "OUTPUT_EXISTS"
  | "OUTPUT_IS_INPUT"
  | "WRITE_FAILED"
  | "NUMERICAL"
  | "DEVICE_UNAVAILABLE"
  | "CANCELLED"
  | "INVALID_ARGUMENT"
  | "MEMORY_BUDGET"
  | "MISSING_DEPENDENCY"
  | "ENGINE_FAILED";

/** An error the user can act on: it carries a code, the file concerned and, where known, the field. */
export class LoraDropError extends Error {
  override readonly name = "LoraDropError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly file?: string,
    readonly field?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

/** Thrown when an AbortSignal fires; nothing half-done is left behind by the operation that throws it. */
export class CancelledError extends LoraDropError {
  constructor(what = "operation") {
    super("CANCELLED", `${what} cancelled`);
  }
}

/** Throws CancelledError when the signal has fired. Call between units of work. */
export function throwIfCancelled(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw new CancelledError(what);
}

/** True when `e` is one of the engine's typed errors. */
export function isLoraDropError(e: unknown): e is LoraDropError {
  return e instanceof LoraDropError;
}

/**
 * A short description of an untrusted value for an error message. Bounded in length, and safe for values nested
 * so deeply that JSON.stringify or String() would overflow the stack (a hostile file can hold those).
 */
export function describeValue(v: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? "[…deeply nested list…]" : "{…deeply nested object…}";
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The shape an error has after crossing a process boundary (the worker and the PyTorch engine's child processes). */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  field?: string;
  stack?: string;
}

/** Flattens an error for a message between processes; LoraDropError keeps its code, file and field. */
export function serializeError(e: unknown): SerializedError {
  if (isLoraDropError(e)) return { name: e.name, message: e.message, code: e.code, file: e.file, field: e.field, stack: e.stack };
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: "Error", message: String(e) };
}

/** Rebuilds an error received from another process: a LoraDropError again when it carried a code. */
export function deserializeError(s: SerializedError): Error {
  if (s.code) {
    // The message already includes the file prefix; rebuild without doubling it.
    const e = new LoraDropError(s.code as LoraDropError["code"], s.file && s.message.startsWith(`${s.file}: `) ? s.message.slice(s.file.length + 2) : s.message, s.file, s.field);
    if (s.stack) e.stack = s.stack;
    return e;
  }
  const e = new Error(s.message);
  e.name = s.name;
  if (s.stack) e.stack = s.stack;
  return e;
}
