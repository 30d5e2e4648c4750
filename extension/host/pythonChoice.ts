/**
 * Which Python runs the torch engine from the extension: the `loraDrop.pythonPath` setting; else the interpreter
 * selected in the Python extension (ms-python.python's `environments` API: getActiveEnvironmentPath, then
 * resolveEnvironment for its executable); else `python3` on PATH (the engine's own default). Every call into the
 * other extension is guarded: it may be missing, inactive, older without the API, or throw, and none of that may
 * stop a run — the choice falls through to the next source and says why in `note`. Pure (no `vscode`): the
 * extension object is passed in, and unit tests pass a fake.
 */

/** The id of the Python extension. */
export const PYTHON_EXTENSION_ID = "ms-python.python";

/** The part of an extension object read here (vscode.Extension<unknown>). */
export interface ExtensionLike {
  isActive: boolean;
  activate(): PromiseLike<unknown>;
  exports: unknown;
}

/** The interpreter chosen, and where from (said in the log, so a user knows what to change). */
export interface PythonPick {
  /** The interpreter, or undefined for the engine's default ($LORA_DROP_PYTHON, else python3 on PATH). */
  python?: string;
  source: "setting" | "python-extension" | "path";
  /** Why the Python extension gave no interpreter, when it was asked and did not. */
  note?: string;
}

/** Chooses the interpreter (see the module comment); `resource` scopes the Python extension's choice (a Uri). */
export async function choosePython(setting: string, pythonExtension: ExtensionLike | undefined, resource?: unknown): Promise<PythonPick> {
  if (setting.trim()) return { python: setting.trim(), source: "setting" };
  if (!pythonExtension) return { source: "path" };
  try {
    const found = await fromPythonExtension(pythonExtension, resource);
    if (typeof found === "string") return { python: found, source: "python-extension" };
    return { source: "path", note: found.why };
  } catch (e) {
    return { source: "path", note: `the Python extension failed: ${(e as Error)?.message ?? String(e)}` };
  }
}

/** How a pick reads in the log: "/venv/bin/python (selected in the Python extension)". */
export function describePick(p: PythonPick): string {
  const where = p.source === "setting" ? "the loraDrop.pythonPath setting" : p.source === "python-extension" ? "selected in the Python extension" : "python3 on PATH or $LORA_DROP_PYTHON";
  return `${p.python ?? "python3"} (${where}${p.note ? `; ${p.note}` : ""})`;
}

/** The Python extension's active interpreter, or why there is none. */
async function fromPythonExtension(ext: ExtensionLike, resource: unknown): Promise<string | { why: string }> {
  if (!ext.isActive) await ext.activate();
  const environments = field(ext.exports, "environments");
  const getActive = field(environments, "getActiveEnvironmentPath");
  const resolve = field(environments, "resolveEnvironment");
  if (typeof getActive !== "function") return { why: "the Python extension has no environments API (an older release)" };
  const active = getActive.call(environments, resource) as unknown;
  const activePath = field(active, "path");
  if (typeof activePath !== "string" || !activePath) return { why: "no interpreter is selected in the Python extension" };
  if (typeof resolve === "function") {
    const resolved = (await resolve.call(environments, active)) as unknown;
    const executable = field(field(field(resolved, "executable"), "uri"), "fsPath");
    if (typeof executable === "string" && executable) return executable;
  }
  // Unresolved (an environment not yet discovered): its path is the interpreter itself for a plain selection.
  return activePath;
}

/** A property of an object from another extension, or undefined (never throws on a missing or odd value). */
function field(o: unknown, key: string): unknown {
  return typeof o === "object" && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}
