/**
 * The CLI's engine and launch options as commander parses them: defaults (onnx on auto, one process), every
 * engine's devices accepted, the torch options and the launch options turned into the engine's fields (the local
 * launcher unless another is named), and bad values refused as usage errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { addEngineOptions, addLaunchOptions, engineArgs, launchArgs, nodeDoneLine } from "../../../extension/cli/engineArgs";

function parse(args: string[]): Record<string, unknown> {
  const cmd = addLaunchOptions(addEngineOptions(new Command("x").exitOverride().configureOutput({ writeErr: () => {} })));
  cmd.parse(args, { from: "user" });
  return cmd.opts();
}

test("defaults: the onnx engine on auto, one process", () => {
  const o = parse([]);
  assert.deepEqual(engineArgs(o), { engine: "onnx", device: "auto" });
  assert.deepEqual(launchArgs(o), {});
});

test("the torch engine's options, and a launch over several nodes", () => {
  const o = parse(["--engine", "torch", "--device", "mps", "--python", "/venv/bin/python", "--dtype", "bfloat16",
    "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1", "--master-port", "29500"]);
  assert.deepEqual(engineArgs(o), { engine: "torch", device: "mps", python: "/venv/bin/python", dtype: "bfloat16" });
  assert.deepEqual(launchArgs(o), { launch: { kind: "local", nprocPerNode: 8, nnodes: 2, nodeRank: 1, masterAddr: "10.0.0.1", masterPort: 29500 } });
  assert.deepEqual(launchArgs(parse(["--launcher", "accelerate"])), { launch: { kind: "accelerate", nprocPerNode: 1 } });
  assert.equal(nodeDoneLine(1, "/out", "adapter"), "node 1: done; node 0 writes the adapter (nothing was written to /out here)");
});

test("bad values are usage errors", () => {
  for (const args of [["--engine", "jax"], ["--device", "tpu"], ["--dtype", "int8"], ["--launcher", "slurm"], ["--nproc-per-node", "0"], ["--node-rank", "-1"]]) {
    assert.throws(() => parse(args), (e: unknown) => (e as { code?: string }).code?.startsWith("commander.") === true, args.join(" "));
  }
});
