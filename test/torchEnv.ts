/**
 * The Python environment the torch-engine tests run in, and their fixtures.
 *
 * The tests need a Python with torch, transformers and peft. The project's offline stack (`shared/pyenv`, found
 * beside the repository or a folder above it, or named by $LORA_DROP_PYENV) supplies transformers and peft as pure
 * Python for Debian's python3-torch; its env.sh is sourced for its variables. The interpreter is $LORA_DROP_PYTHON,
 * else the first of /usr/bin/python3 and python3 that imports torch, transformers and peft with that environment.
 * Without one the tests skip, saying why — unless LORA_DROP_REQUIRE_TORCH=1 (CI), where a missing piece fails.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, tmpDir } from "./helpers";

export { REPO_ROOT };

/** A Python that can run the engine, with the environment to run it in. */
export interface TorchEnv {
  python: string;
  env: NodeJS.ProcessEnv;
}

let cached: { env?: TorchEnv; reason?: string } | undefined;

/** The torch environment, or why there is none. */
export function findTorchEnv(): { env?: TorchEnv; reason?: string } {
  if (cached) return cached;
  const extra = pyenvVariables();
  const env = { ...process.env, ...extra };
  const candidates = process.env.LORA_DROP_PYTHON ? [process.env.LORA_DROP_PYTHON] : ["/usr/bin/python3", "python3"];
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", "import torch, transformers, peft, safetensors"], { env, encoding: "utf8", timeout: 120_000 });
    if (r.status === 0) return (cached = { env: { python, env: extra } });
    const last = (r.error?.message ?? r.stderr ?? "").trim().split("\n").pop();
    tried.push(`${python}: ${last}`);
  }
  return (cached = { reason: `no Python with torch, transformers and peft (${tried.join("; ")}${extra.PYTHONPATH ? "" : `; no usable shared/pyenv/env.sh (${pyenvDir() ?? "none found above the repository"})`})` });
}

/**
 * The torch environment for a test, or a skip reason. With LORA_DROP_REQUIRE_TORCH=1 a missing environment throws,
 * failing the test instead of skipping it.
 */
export function torchEnvOrSkip(): { env?: TorchEnv; skip?: string } {
  const found = findTorchEnv();
  if (found.env) return { env: found.env };
  if (process.env.LORA_DROP_REQUIRE_TORCH === "1") throw new Error(`LORA_DROP_REQUIRE_TORCH=1 but ${found.reason}`);
  return { skip: found.reason };
}

/** The folder of the offline Python stack, if there is one. */
export function pyenvDir(): string | undefined {
  if (process.env.LORA_DROP_PYENV) return process.env.LORA_DROP_PYENV;
  for (let dir = path.dirname(REPO_ROOT); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "shared", "pyenv");
    if (fs.existsSync(path.join(candidate, "env.sh"))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The variables env.sh sets (sourced by bash, so the file stays the one place that defines them). */
function pyenvVariables(): NodeJS.ProcessEnv {
  const dir = pyenvDir();
  if (!dir) return {};
  const names = ["PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_NO_ADVISORY_WARNINGS", "TOKENIZERS_PARALLELISM", "PYTHONDONTWRITEBYTECODE"];
  const script = `source "$1" >/dev/null && for v in ${names.join(" ")}; do printf '%s=%s\\0' "$v" "\${!v}"; done`;
  let out: string;
  try {
    out = execFileSync("bash", ["-c", script, "bash", path.join(dir, "env.sh")], { encoding: "utf8", env: { ...process.env, PYTHONPATH: "" }, stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    return {};
  }
  const vars: NodeJS.ProcessEnv = {};
  for (const pair of out.split("\0").filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (pair.slice(eq + 1) !== "") vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return vars;
}

/** Paths of one architecture's fixture: a transformers model, a PEFT adapter and a token-id dataset. */
export interface TorchFixture { modelDir: string; adapterDir: string; dataFile: string }

/** Architectures the fixture script writes. */
export type FixtureArch = "llama" | "qwen2" | "gpt2" | "roberta";

/** Writes the fixtures of `archs` with transformers' and PEFT's save_pretrained (test/python/make_torch_fixtures.py). */
export function makeTorchFixtures(env: TorchEnv, archs: FixtureArch[]): Record<FixtureArch, TorchFixture> {
  const root = tmpDir("lora-drop-torch-fx-");
  execFileSync(env.python, [path.join(REPO_ROOT, "test", "python", "make_torch_fixtures.py"), root, ...archs], { env: { ...process.env, ...env.env }, stdio: ["ignore", "ignore", "pipe"] });
  const out = {} as Record<FixtureArch, TorchFixture>;
  for (const a of archs) out[a] = { modelDir: path.join(root, a, "model"), adapterDir: path.join(root, a, "adapter"), dataFile: path.join(root, a, "data.jsonl") };
  return out;
}

/** The variable a test puts in an engine run's environment to find its processes again (they inherit it). */
export const TAG_VAR = "LORA_DROP_TEST_TAG";

/** Live processes whose environment carries `TAG_VAR=tag` (Linux /proc; none elsewhere). */
export function taggedProcesses(tag: string): number[] {
  if (!fs.existsSync("/proc/self/environ")) return [];
  return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`${TAG_VAR}=${tag}`);
    } catch {
      return false;
    }
  }).map(Number);
}

/** Waits until no process carries `tag` (true) or `ms` pass (false). */
export async function tagGone(tag: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (taggedProcesses(tag).length === 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return taggedProcesses(tag).length === 0;
}
