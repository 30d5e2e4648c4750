/**
 * Turns anything thrown into the one line shown to the user and the details written to the log. Pure, so the
 * wording is unit-tested. Engine errors (LoraDropError) already name the file and what is wrong; bugs keep
 * their stack for the log and get a short notice.
 */
import { isLoraDropError, LoraDropError } from "../core/errors";

/** A user-facing description of a failure. */
export interface ErrorDescription {
  /** One line for the notification. */
  message: string;
  /** Everything worth logging (code, file, field, stack). */
  detail: string;
  /** True when the user cancelled: no error notification is due. */
  cancelled: boolean;
}

/** The shape an error has after crossing a process boundary (see jobProtocol). */
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

/**
 * Describes a failure of the command titled `what` (e.g. "Profile LoRA outputs"). `shortPath` may shorten the
 * file an engine error names (e.g. workspace-relative) for the notification; the log keeps the full path.
 */
export function describeError(what: string, e: unknown, shortPath: (file: string) => string = (f) => f): ErrorDescription {
  if (isLoraDropError(e)) {
    const cancelled = e.code === "CANCELLED";
    const where = e.field ? ` (field ${e.field})` : "";
    const text = e.file && e.message.startsWith(`${e.file}: `) ? `${shortPath(e.file)}: ${e.message.slice(e.file.length + 2)}` : e.message;
    return {
      message: cancelled ? `${what}: cancelled.` : `${what} failed: ${text}${where}`,
      detail: `[${e.code}] ${e.message}${where}${e.stack ? `\n${e.stack}` : ""}`,
      cancelled,
    };
  }
  if (e instanceof Error) {
    // An error thrown on purpose by host code (a UserError) is already a sentence for the user.
    if (e instanceof UserError) return { message: `${what}: ${e.message}`, detail: e.message, cancelled: false };
    return { message: `${what} failed: ${e.message || e.name}`, detail: e.stack ?? `${e.name}: ${e.message}`, cancelled: false };
  }
  return { message: `${what} failed: ${String(e)}`, detail: String(e), cancelled: false };
}

/** An error raised by the host for a situation the user can fix (no workspace, nothing selected…). */
export class UserError extends Error {
  override readonly name = "UserError";
}
