/**
 * The default memory budget: host memory alone on the CPU, and on a GPU provider also the GPU's free memory as
 * nvidia-smi reports it (a stand-in script here plays nvidia-smi).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultMemoryBudget, DEFAULT_BUDGET_FRACTION, GPU_BUDGET_FRACTION } from "../../../../extension/core/stream/memoryBudget";
import { nvidiaFreeMemory } from "../../../../extension/core/stream/gpuMemory";
import { tmpDir } from "../../../helpers";

const MIB = 1024 * 1024;

function fakeSmi(output: string, status = 0): string {
  const file = path.join(tmpDir("smi"), "nvidia-smi");
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s' '${output}'\nexit ${status}\n`, { mode: 0o755 });
  return file;
}

test("nvidia-smi's free memory of the first GPU is read in bytes; a failure or junk reads as unknown", () => {
  assert.equal(nvidiaFreeMemory(fakeSmi("1234\n80000\n")), 1234 * MIB);
  assert.equal(nvidiaFreeMemory(fakeSmi("[N/A]\n")), undefined);
  assert.equal(nvidiaFreeMemory(fakeSmi("1234\n", 9)), undefined);
  assert.equal(nvidiaFreeMemory(path.join(tmpDir("smi"), "missing")), undefined);
});

test("the budget on a GPU provider is the smaller of the host's and the GPU's share; the CPU ignores the GPU", () => {
  const host = os.freemem() * DEFAULT_BUDGET_FRACTION;
  const small = 512 * MIB;
  const cpu = defaultMemoryBudget("cpu", () => small);
  assert.ok(Math.abs(cpu - host) < 0.2 * host, `CPU budget ${cpu} should follow free host memory (${host})`);
  assert.equal(defaultMemoryBudget("cuda", () => small), Math.floor(small * GPU_BUDGET_FRACTION));
  assert.equal(defaultMemoryBudget("webgpu", () => small), Math.floor(small * GPU_BUDGET_FRACTION));
  const huge = 1024 * 1024 * MIB;
  const gpuBig = defaultMemoryBudget("auto", () => huge);
  assert.ok(gpuBig < huge * GPU_BUDGET_FRACTION && Math.abs(gpuBig - host) < 0.2 * host, "a GPU larger than the host's share leaves the host's");
  const unknown = defaultMemoryBudget("cuda", () => undefined);
  assert.ok(Math.abs(unknown - host) < 0.2 * host, "an unreadable GPU leaves the host's share");
});
