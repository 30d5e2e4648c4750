/**
 * Which Python runs the torch engine, and the environment it runs in. The interpreter is the caller's explicit
 * choice (a setting or option), else $LORA_DROP_PYTHON, else `python3` on PATH; the extension host adds the Python
 * extension's selected interpreter as the explicit choice. The package `lora_drop_torch` ships inside this
 * repository (and the .vsix) under `python/`, which is put first on PYTHONPATH.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoraDropError } from "../util/errors";

/** The variable naming the Node process the engine watches (python/lora_drop_torch/signals.py). */
export const PARENT_PID_VAR = "LORA_DROP_PARENT_PID";

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
 * folder), no Hugging Face telemetry unless they say otherwise, and this process's id for the engine to watch.
 */
export function pythonEnvironment(base: NodeJS.ProcessEnv = process.env, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...base, ...extra };
  const rest = env.PYTHONPATH ? `${path.delimiter}${env.PYTHONPATH}` : "";
  return {
    ...env, PYTHONPATH: `${torchPackageRoot()}${rest}`, PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8", PYTHONDONTWRITEBYTECODE: "1",
    HF_HUB_DISABLE_TELEMETRY: env.HF_HUB_DISABLE_TELEMETRY ?? "1",
    // The engine stops itself when this process is gone (killed outright, it cannot stop the engine's process group).
    [PARENT_PID_VAR]: String(process.pid),
  };
}

/** What torch's `auto` device is for an interpreter: CUDA, else Apple's MPS, else the CPU (as the engine resolves it). */
export async function probeDevice(choice: PythonChoice, env: NodeJS.ProcessEnv): Promise<"cuda" | "mps" | "cpu"> {
  const code = "import torch\nmps = getattr(torch.backends, 'mps', None)\n" +
    "print('cuda' if torch.cuda.is_available() else 'mps' if mps is not None and mps.is_available() else 'cpu')";
  const { stdout, ok, why } = await new Promise<{ stdout: string; ok: boolean; why: string }>((resolve) => {
    execFile(choice.command, ["-c", code], { env, timeout: 120_000 }, (e, out, err) =>
      resolve({ stdout: String(out), ok: !e, why: e ? (String(err).trim().split("\n").pop() || e.message) : "" }));
  });
  const device = stdout.trim().split("\n").pop();
  if (ok && (device === "cuda" || device === "mps" || device === "cpu")) return device;
  throw new LoraDropError("MISSING_DEPENDENCY", `${describeChoice(choice)} cannot tell which device torch runs on (${why.slice(0, 200)}); ` +
    "install torch for it, or give the device (cuda or cpu) instead of auto");
}
