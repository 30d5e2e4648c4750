/**
 * The extension's commands on the torch engine, under the fake `vscode` with the real worker and engine: with
 * `loraDrop.engine` torch and no `loraDrop.pythonPath`, the interpreter selected in the (fake) Python extension
 * runs the engine, and the log, the progress title and the profile say "torch"; "Evaluate thresholds" (the panel's
 * button, the prune prompt's) sweeps on the torch engine and the sweep says so; an interpreter that does not exist
 * is one error notification saying what to do, offering the Python path setting, with no traceback.
 */
import { fake, fakeExtensionContext } from "./fakeVscode";
import { test } from "node:test";
import assert from "node:assert/strict";
import type * as vscodeTypes from "vscode";
import { registerCommands } from "../../../extension/host/commands/table";
import { createHostLog } from "../../../extension/host/log";
import { Services } from "../../../extension/host/services";
import { TestState } from "../../../extension/host/testApi";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { readSweep, sweepPathFor } from "../../../extension/core/sweep/sweepFile";
import { runSweep } from "../../../extension/host/commands/sweep";
import { makeTorchFixtures, torchEnvOrSkip } from "../../torchEnv";
import { makeFixture, tmpDir, REPO_ROOT } from "../../helpers";

const { env, skip } = torchEnvOrSkip();

function setup(settings: Record<string, unknown>, root: string): { run: (id: string, ...args: unknown[]) => Promise<unknown>; services: Services } {
  fake.reset();
  fake.workspaceFolders = [root];
  fake.settings = { maxExamples: 4, maxTokens: 16, device: "cpu", ...settings };
  const services = new Services(fakeExtensionContext(REPO_ROOT, tmpDir()) as vscodeTypes.ExtensionContext, createHostLog(), new TestState(undefined));
  registerCommands(services);
  return { run: async (id, ...args) => fake.registered.get(id)!(...args), services };
}

test("profile on the torch engine with the Python extension's interpreter: the log, the title and the profile say torch", { skip }, async () => {
  // The worker inherits this process's environment: the offline Python stack's variables go there.
  Object.assign(process.env, env!.env);
  const fx = makeTorchFixtures(env!, ["llama"]).llama;
  const { run } = setup({ engine: "torch" }, tmpDir());
  const environments = {
    getActiveEnvironmentPath: () => ({ id: "venv", path: "/selected/venv" }),
    resolveEnvironment: async () => ({ executable: { uri: { fsPath: env!.python } } }),
  };
  fake.extensions.set("ms-python.python", { isActive: true, activate: async () => undefined, exports: { environments } });
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  const profile = readProfile(profilePath);
  assert.deepEqual([profile.engine, profile.device], ["torch", "torch cpu float32"]);
  const log = fake.logLines.join("\n");
  assert.match(log, new RegExp(`torch engine: Python ${env!.python.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(selected in the Python extension\\)`));
  assert.match(log, /LoRA-drop: profiling adapter \(torch cpu\): starting profile job/);
  assert.match(log, /tok\/s\) on torch cpu float32/);
  assert.deepEqual(fake.shown.filter((s) => s.kind === "error"), []);
});

test("Evaluate thresholds with loraDrop.engine torch: the sweep runs on the torch engine, beside the profile", { skip }, async () => {
  Object.assign(process.env, env!.env);
  const fx = makeTorchFixtures(env!, ["gpt2"]).gpt2;
  const { run, services } = setup({ engine: "torch", pythonPath: env!.python }, tmpDir());
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  const sweepPath = await runSweep(services, profilePath, readProfile(profilePath), "share");
  assert.equal(sweepPath, sweepPathFor(profilePath, "share"));
  const sweep = readSweep(sweepPath);
  assert.deepEqual([sweep.engine, sweep.measured.device, sweep.profile.created], ["torch", "torch cpu float32", readProfile(profilePath).created]);
  const log = fake.logLines.join("\n");
  assert.match(log, /LoRA-drop: evaluating the thresholds of .* \(share; torch cpu\): starting sweep job/);
  assert.match(log, /evaluate thresholds: \d+ thresholds measured in [\d.]+ s on torch cpu float32/);
  assert.deepEqual(fake.shown.filter((s) => s.kind === "error"), []);
});

test("a missing interpreter is one notification saying what to do, with the Python path setting one click away", async () => {
  const fx = makeFixture({ numLayers: 2 }, { r: 2 }, { count: 2 });
  const { run } = setup({ engine: "torch", pythonPath: "/nonexistent/bin/python3" }, fx.root);
  fake.answers.push({ match: "failed", choose: "Set Python path" });
  await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false });
  const errors = fake.shown.filter((s) => s.kind === "error");
  assert.equal(errors.length, 1, "exactly one notification");
  assert.ok(!errors[0]!.message.includes("\n") && !/Traceback/.test(errors[0]!.message), errors[0]!.message);
  assert.match(errors[0]!.message, /^Profile LoRA outputs failed: the Python interpreter \/nonexistent\/bin\/python3 .* was not found; install Python 3 with torch, transformers and peft/);
  assert.deepEqual(errors[0]!.items, ["Set Python path", "Show log"]);
  await new Promise((r) => setImmediate(r));
  assert.ok(fake.executed.some((c) => c.command === "workbench.action.openSettings" && c.args[0] === "loraDrop.pythonPath"), "the setting is opened");
});
