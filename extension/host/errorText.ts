/**
 * Turns anything thrown into the one line shown to the user and the details written to the log. Pure, so the
 * wording is unit-tested. Engine errors (LoraDropError) already name the file and what is wrong; bugs keep
 * their stack for the log and get a short notice.
 */
import { isLoraDropError } from "../core/util/errors";

/** A user-facing description of a failure. */
export interface ErrorDescription {
  /** One line for the notification. */
  message: string;
  /** Everything worth logging (code, file, field, stack). */
  detail: string;
  /** True when the user cancelled: no error notification is due. */
  cancelled: boolean;
  /** True when Python or a library of the torch engine is missing or too old (the notification offers the setting). */
  missingDependency?: boolean;
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
      ...(e.code === "MISSING_DEPENDENCY" ? { missingDependency: true } : {}),
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
