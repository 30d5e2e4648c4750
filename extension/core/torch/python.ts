/**
 * Which Python runs the torch engine, and the environment it runs in. The interpreter is the caller's explicit
 * choice (a setting or option), else $LORA_DROP_PYTHON, else `python3` on PATH; the extension host adds the Python
 * extension's selected interpreter as the explicit choice. The package `lora_drop_torch` ships inside this
 * repository (and the .vsix) under `python/`, which is put first on PYTHONPATH.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The environment variable naming the interpreter when no explicit one is given. */
export const PYTHON_ENV_VAR = "LORA_DROP_PYTHON";

/** An interpreter and where the choice came from (said in messages, so a user knows what to change). */
export interface PythonChoice {
  command: string;
  source: "option" | "env" | "path";
}

/** The interpreter: `explicit` > $LORA_DROP_PYTHON > `python3` on PATH. */
export function findPython(explicit?: string, env: NodeJS.ProcessEnv = process.env): PythonChoice {
  if (explicit && explicit.trim()) return { command: explicit, source: "option" };
  const fromEnv = env[PYTHON_ENV_VAR];
  if (fromEnv && fromEnv.trim()) return { command: fromEnv, source: "env" };
  return { command: "python3", source: "path" };
}

/** How to tell the user where an interpreter choice came from. */
export function describeChoice(p: PythonChoice): string {
  return p.source === "option" ? `the Python interpreter ${p.command} (the pythonPath option)`
    : p.source === "env" ? `the Python interpreter ${p.command} (from $${PYTHON_ENV_VAR})`
      : "python3 on PATH";
}

/**
 * The folder holding the `lora_drop_torch` package: `python/` at the repository (or extension) root, found by
 * walking up from this file, which sits in extension/core/torch/ as source and out/extension/core/torch/ compiled.
 */
export function torchPackageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "python");
    if (fs.existsSync(path.join(candidate, "lora_drop_torch", "__main__.py"))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`the lora_drop_torch package was not found above ${from}`);
  }
}

/**
 * The child's environment: `base` with `extra` over it, the package first on PYTHONPATH (before any PYTHONPATH of
 * theirs), unbuffered UTF-8 streams, no bytecode files written (the package may sit in a read-only extension
 * folder), and no Hugging Face telemetry unless they say otherwise.
 */
export function pythonEnvironment(base: NodeJS.ProcessEnv = process.env, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...base, ...extra };
  const rest = env.PYTHONPATH ? `${path.delimiter}${env.PYTHONPATH}` : "";
  return { ...env, PYTHONPATH: `${torchPackageRoot()}${rest}`, PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8", PYTHONDONTWRITEBYTECODE: "1", HF_HUB_DISABLE_TELEMETRY: env.HF_HUB_DISABLE_TELEMETRY ?? "1" };
}
