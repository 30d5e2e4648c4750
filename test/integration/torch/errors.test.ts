/**
 * How the torch engine fails: with one clear line naming what to do, never a Python traceback. A missing
 * interpreter; torch, transformers or peft missing or too old (stand-in packages put first on PYTHONPATH shadow the
 * real ones); an unexpected Python exception (its traceback goes to the log, not the message); a process that
 * writes something else than the protocol, or dies without answering; and a device out-of-memory exception.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { isLoraDropError, LoraDropError } from "../../../extension/core/util/errors";
import { torchProfile } from "../../../extension/core/importance/torchProfile";
import { torchPackageRoot } from "../../../extension/core/torch/python";
import { makeFixture, tmpDir } from "../../helpers";
import { torchEnvOrSkip } from "../../torchEnv";

const { env, skip } = torchEnvOrSkip();
// The stand-in torch needs no real one: any Python 3 runs that case.
const anyPython = env?.python ?? (spawnSync("python3", ["--version"]).status === 0 ? "python3" : undefined);
const fx = makeFixture({ numLayers: 2 }, { r: 2 }, { count: 4 });

/** A folder of stand-in packages: name → the source of its __init__.py. */
function standIns(packages: Record<string, string>): string {
  const dir = tmpDir("lora-drop-standin-");
  for (const [name, source] of Object.entries(packages)) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, "__init__.py"), source);
  }
  return dir;
}

/** Runs a profile that must fail; returns the error, after checking it is one line without a traceback. */
async function failure(python: string, extraPath?: string, log: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<LoraDropError> {
  const base = env?.env ?? {};
  const pythonPath = [extraPath, base.PYTHONPATH].filter(Boolean).join(path.delimiter);
  try {
    await torchProfile({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, device: "cpu", python, env: { ...base, ...extraEnv, PYTHONPATH: pythonPath } },
      { log: { info: (m) => log.push(m), warn: (m) => log.push(m) } });
  } catch (e) {
    assert.ok(isLoraDropError(e), `not a typed error: ${(e as Error).stack}`);
    assert.ok(!e.message.includes("\n"), `more than one line: ${e.message}`);
    assert.ok(!/Traceback|File ".*", line/.test(e.message), `a traceback in the message: ${e.message}`);
    return e;
  }
  throw new Error("the profile did not fail");
}

/** An executable shell script standing in for the interpreter. */
function fakeInterpreter(body: string): string {
  const file = path.join(tmpDir(), "python");
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test("a missing interpreter is MISSING_DEPENDENCY saying how to name one", async () => {
  const e = await failure("/nonexistent/bin/python3");
  assert.equal(e.code, "MISSING_DEPENDENCY");
  assert.match(e.message, /\/nonexistent\/bin\/python3 .* was not found; install Python 3 with torch, transformers and peft/);
});

test("torch missing, or transformers too old, is MISSING_DEPENDENCY naming what to install", { skip: anyPython ? false : "no python3" }, async () => {
  const noTorch = await failure(anyPython!, standIns({ torch: "raise ImportError(\"No module named 'torch'\")" }));
  assert.equal(noTorch.code, "MISSING_DEPENDENCY");
  assert.match(noTorch.message, /torch cannot be imported by .*No module named 'torch'.*install it with: .* -m pip install 'torch>=1\.13'/);
  const oldTransformers = await failure(anyPython!, standIns({ torch: "__version__ = '2.1.0'", transformers: "__version__ = '4.30.2'" }));
  assert.equal(oldTransformers.code, "MISSING_DEPENDENCY");
  assert.match(oldTransformers.message, /transformers 4\.30\.2 is too old for the torch engine \(needs 4\.37 or newer\); upgrade it with: .*'transformers>=4\.37'/);
});

test("peft missing or too old is MISSING_DEPENDENCY naming what to install", { skip }, async () => {
  const missing = await failure(env!.python, standIns({ peft: "raise ImportError(\"No module named 'peft'\")" }));
  assert.equal(missing.code, "MISSING_DEPENDENCY");
  assert.match(missing.message, /peft cannot be imported .*'peft>=0\.7'/);
  const old = await failure(env!.python, standIns({ peft: "__version__ = '0.4.0'" }));
  assert.match(old.message, /peft 0\.4\.0 is too old for the torch engine \(needs 0\.7 or newer\)/);
});

test("transformers 5 with a peft older than 0.18 is MISSING_DEPENDENCY naming the peft it needs", { skip: anyPython ? false : "no python3" }, async () => {
  const e = await failure(anyPython!, standIns({ torch: "__version__ = '2.11.0'", transformers: "__version__ = '5.2.0'", peft: "__version__ = '0.14.0'", safetensors: "__version__ = '0.7.0'" }));
  assert.equal(e.code, "MISSING_DEPENDENCY");
  assert.match(e.message, /peft 0\.14\.0 is too old for the torch engine \(needs 0\.18 or newer with transformers 5\.2\.0\); upgrade it with: .*'peft>=0\.18'/);
});

test("an accelerate launch configured for FSDP or DeepSpeed is refused: every process holds the whole model", { skip }, async () => {
  for (const [variable, what] of [["ACCELERATE_USE_FSDP", "FSDP"], ["ACCELERATE_USE_DEEPSPEED", "DeepSpeed"]]) {
    const e = await failure(env!.python, undefined, [], { [variable]: "true" });
    assert.equal(e.code, "INVALID_ARGUMENT");
    assert.equal(e.field, "launcher");
    assert.match(e.message, new RegExp(`accelerate was configured for ${what}, which the torch engine does not run: it trains data-parallel`));
  }
});

test("an unexpected Python exception is one ENGINE_FAILED line; its traceback goes to the log", { skip }, async () => {
  const log: string[] = [];
  // A transformers that passes the version check but has no Auto classes: load_model fails in an untyped way.
  const e = await failure(env!.python, standIns({ transformers: "__version__ = '4.44.0'", peft: "__version__ = '0.14.0'" }), log);
  assert.equal(e.code, "ENGINE_FAILED");
  assert.match(e.message, /the torch engine failed unexpectedly: AttributeError: .*AutoModelForCausalLM.* \(the Python traceback is in the log\)/);
  assert.ok(log.some((l) => l.includes("Traceback (most recent call last)")), "the traceback is logged");
});

test("a process that breaks the protocol or dies without answering is ENGINE_FAILED with its last words", async () => {
  const chatty = await failure(fakeInterpreter("echo 'Loading model...'"));
  assert.equal(chatty.code, "ENGINE_FAILED");
  assert.match(chatty.message, /the torch engine wrote a line that is not JSON: "Loading model\.\.\."/);
  const wrongType = await failure(fakeInterpreter(`echo '{"type":"step","step":1}'`));
  assert.match(wrongType.message, /sent a "step" line whose totalSteps is not a finite number/);
  const dying = await failure(fakeInterpreter("echo 'Traceback (most recent call last):' >&2; echo 'SyntaxError: invalid syntax' >&2; exit 1"));
  assert.equal(dying.code, "ENGINE_FAILED");
  assert.match(dying.message, /the torch engine \(python\) exited with code 1 before answering; its last message: SyntaxError: invalid syntax$/);
});

test("a device out-of-memory exception becomes MEMORY_BUDGET saying what to lower", { skip: anyPython ? false : "no python3" }, () => {
  const code = [
    "from lora_drop_torch.errors import oom_error",
    "class OutOfMemoryError(RuntimeError): pass",
    "e = oom_error(OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB'), 'at step 3')",
    "print(e.code + ' ' + e.message)",
    "print(oom_error(ValueError('bad value'), 'x'))",
  ].join("\n");
  const r = spawnSync(anyPython!, ["-c", code], { env: { ...process.env, PYTHONPATH: torchPackageRoot() }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const [typed, other] = r.stdout.trim().split("\n");
  assert.match(typed!, /^MEMORY_BUDGET the device ran out of memory at step 3 \(CUDA out of memory\. Tried to allocate 2\.00 GiB\); lower the batch size/);
  assert.equal(other, "None");
});
