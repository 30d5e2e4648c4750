/**
 * The Python the reference tests run: Debian's /usr/bin/python3 with torch, plus the project's pyenv (the real
 * transformers and PEFT as pure-Python sources, in `../shared/pyenv` beside the checkout). Its variables come from
 * pyenv's own env.sh, sourced in bash, so the test runs exactly what a person running `source env.sh` runs.
 * Missing pieces make the tests skip with the reason, unless LORA_DROP_REQUIRE_TORCH=1 (CI), where they fail.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";

/** Debian's interpreter (the `python3` first on PATH may be another one, without torch). */
export const SYSTEM_PYTHON = "/usr/bin/python3";
/** Set to 1 where the Python reference must run (CI): a missing piece then fails instead of skipping. */
export const REQUIRE_TORCH = process.env.LORA_DROP_REQUIRE_TORCH === "1";

/** A usable Python: the interpreter and the environment to run it with, or why there is none. */
export type PythonEnv = { python: string; env: NodeJS.ProcessEnv; pyenvDir: string } | { missing: string };

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** Where pyenv may be: LORA_DROP_PYENV, `../shared/pyenv` beside this checkout, or beside the main checkout of a git worktree. */
function pyenvCandidates(): string[] {
  const out = process.env.LORA_DROP_PYENV ? [process.env.LORA_DROP_PYENV] : [];
  out.push(path.join(REPO_ROOT, "..", "shared", "pyenv"), path.join(REPO_ROOT, "shared", "pyenv"));
  const common = spawnSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: REPO_ROOT, encoding: "utf8" });
  if (common.status === 0 && common.stdout.trim()) out.push(path.join(path.dirname(common.stdout.trim()), "..", "shared", "pyenv"));
  return out;
}

/** The variables env.sh exports, read by sourcing it in bash (`env -0` after the source). */
function envShVariables(envSh: string): NodeJS.ProcessEnv | string {
  const r = spawnSync("bash", ["-c", 'source "$1" >/dev/null && env -0', "bash", envSh], { encoding: "utf8", env: { ...process.env } });
  if (r.status !== 0) return `sourcing ${envSh} failed: ${r.stderr.trim()}`;
  const env: NodeJS.ProcessEnv = {};
  for (const entry of r.stdout.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

let cached: PythonEnv | undefined;

/** Finds /usr/bin/python3 with torch, transformers and peft importable through pyenv; cached per process. */
export function pythonEnv(): PythonEnv {
  if (cached) return cached;
  const pyenvDir = pyenvCandidates().find((d) => fs.existsSync(path.join(d, "env.sh")));
  if (!fs.existsSync(SYSTEM_PYTHON)) return (cached = { missing: `${SYSTEM_PYTHON} is not installed (apt-get install python3-torch, see ../shared/pyenv/README.md)` });
  if (!pyenvDir) return (cached = { missing: `no pyenv found (looked in ${pyenvCandidates().join(", ")}); set LORA_DROP_PYENV` });
  const env = envShVariables(path.join(pyenvDir, "env.sh"));
  if (typeof env === "string") return (cached = { missing: env });
  const probe = spawnSync(SYSTEM_PYTHON, ["-c", "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"], { encoding: "utf8", env });
  if (probe.status !== 0) return (cached = { missing: `${SYSTEM_PYTHON} cannot import torch, transformers and peft: ${probe.stderr.trim().split("\n").slice(-1)[0]}` });
  return (cached = { python: SYSTEM_PYTHON, env, pyenvDir });
}
