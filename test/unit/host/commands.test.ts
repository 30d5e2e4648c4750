/**
 * The commands end to end under a fake `vscode` (hostFakeVscode.ts) with the real worker and engine: profile,
 * prune from the Explorer (threshold asked, folder written next to the source, kept layers as computed by hand
 * from the profile), replace confirmation, and the failure and cancel paths: one error notification with
 * "Show log", nothing written; a cancel shows no error. The threshold prompt's "Evaluate thresholds" button.
 */
import { fake, FakeUri, fakeExtensionContext, PRESS_BUTTON } from "./fakeVscode";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as vscodeTypes from "vscode";
import { registerCommands } from "../../../extension/host/commands/table";
import { createHostLog } from "../../../extension/host/log";
import { Services } from "../../../extension/host/services";
import { TestState } from "../../../extension/host/testApi";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { parseHostMessage } from "../../../extension/viewModel/protocol";
import { makeFixture, tmpDir, REPO_ROOT } from "../../helpers";
import { readSweep, sweepPathFor } from "../../../extension/core/sweep/sweepFile";
import { EVALUATE_BUTTON_TOOLTIP } from "../../../extension/host/commands/thresholdPrompt";

const fx = makeFixture({}, {}, { count: 16 });
const extensionRoot = REPO_ROOT;

function setup(): { services: Services; test: TestState; run: (id: string, ...args: unknown[]) => Promise<unknown> } {
  fake.reset();
  fake.workspaceFolders = [fx.root];
  fake.settings = { maxExamples: 8, maxTokens: 16, device: "cpu" };
  const test = new TestState(undefined);
  const services = new Services(fakeExtensionContext(extensionRoot, tmpDir()) as vscodeTypes.ExtensionContext, createHostLog(), test);
  registerCommands(services);
  return { services, test, run: async (id, ...args) => fake.registered.get(id)!(...args) };
}

function hashDir(dir: string): string {
  const h = crypto.createHash("sha256");
  for (const f of fs.readdirSync(dir).sort()) h.update(f).update(fs.readFileSync(path.join(dir, f)));
  return h.digest("hex");
}

/** LoRA-drop's selection by hand: layers by importance, descending, until the sum reaches T. */
function keptByHand(importance: number[], threshold: number): number[] {
  const order = importance.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const kept: number[] = [];
  let sum = 0;
  for (const [v, i] of order) {
    if (kept.length > 0 && sum >= threshold - 1e-9) break;
    kept.push(i);
    sum += v;
  }
  return kept.sort((a, b) => a - b);
}

test("profile, then prune from the Explorer: the new adapter sits next to the source with the expected layers", async () => {
  const { run, test: state } = setup();
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  assert.equal(path.dirname(profilePath), path.join(fx.root, ".lora-drop"), "saved in the workspace's output folder");
  assert.equal(state.api().lastProfilePath(), profilePath);
  const profile = readProfile(profilePath);
  assert.equal(profile.sequences.length, 8, "loraDrop.maxExamples applies");

  const before = hashDir(fx.adapterDir);
  fake.inputBoxes.push("0.9");
  const report = (await run("loraDrop.prune", FakeUri.file(path.join(fx.adapterDir, "adapter_config.json")), [])) as { outDir: string; keptLayers: number[]; paramsAfter: number; paramsBefore: number };
  const outDir = path.join(fx.root, "adapter-lora-drop-T0.90");
  assert.equal(report.outDir, outDir);
  assert.deepEqual(report.keptLayers, keptByHand(profile.importance.per_layer, 0.9));
  assert.equal(hashDir(fx.adapterDir), before, "the source adapter is unchanged");
  const written = loadAdapter(outDir, loadHfModel(fx.modelDir).config);
  const layersWithOwnParams = [...new Set(written.loras.filter((l) => !l.param.startsWith("shared.")).map((l) => l.layer))].sort((a, b) => a - b);
  assert.deepEqual(layersWithOwnParams, report.keptLayers, "kept layers keep their own LoRA; the others are bound to the shared one");
  assert.ok(report.paramsAfter < report.paramsBefore);
  assert.deepEqual(fake.executed.find((e) => e.command === "revealInExplorer")?.args.map((u) => (u as FakeUri).fsPath), [outDir]);
  const infos = fake.shown.filter((s) => s.kind === "info");
  assert.equal(infos.length, 1);
  assert.match(infos[0]!.message, new RegExp(`kept layers ${report.keptLayers.join(", ")} `));
  assert.equal(fake.shown.filter((s) => s.kind === "error").length, 0);
  assert.deepEqual(state.api().lastPrune()?.keptLayers, report.keptLayers);

  // Again: the folder exists, so the user is asked; "Replace" replaces it.
  fake.inputBoxes.push("0.9");
  fake.answers.push({ match: "already exists", choose: "Replace" });
  await run("loraDrop.prune", FakeUri.file(fx.adapterDir), []);
  assert.equal(fake.shown.filter((s) => s.kind === "warning").length, 1);
  assert.equal(state.snapshot().finished.at(-1)?.outcome, "ok");
});

test("a corrupt adapter: one error notification with Show log, nothing written", async () => {
  const { run, test: state } = setup();
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  const bad = path.join(fx.root, "bad-adapter");
  fs.cpSync(fx.adapterDir, bad, { recursive: true });
  const st = path.join(bad, "adapter_model.safetensors");
  fs.truncateSync(st, Math.floor(fs.statSync(st).size / 2));
  fake.answers.push({ match: "failed", choose: "Show log" });
  const result = await run("loraDrop.prune", { adapter: bad, profile: profilePath, threshold: 0.9 });
  assert.equal(result, undefined);
  const errors = fake.shown.filter((s) => s.kind === "error");
  assert.equal(errors.length, 1, "exactly one notification");
  assert.match(errors[0]!.message, /^Prune adapter failed: .*adapter_model\.safetensors/);
  assert.deepEqual(errors[0]!.items, ["Show log"]);
  assert.equal(fs.existsSync(path.join(fx.root, "bad-adapter-lora-drop-T0.90")), false);
  assert.deepEqual(fs.readdirSync(fx.root).filter((n) => n.includes("bad-adapter") && n !== "bad-adapter"), [], "no temporary folder left");
  await new Promise((r) => setImmediate(r));
  assert.ok(fake.logLines.includes("<shown>"), "Show log opens the Output channel");
  assert.equal(state.snapshot().errors.length, 1);
  assert.equal(state.snapshot().finished.at(-1)?.outcome, "failed");
});

test("cancel from the progress notification: no error, nothing written", async () => {
  const { run, test: state } = setup();
  fake.cancelAfterMs = 0;
  const outFolder = path.join(fx.root, ".lora-drop");
  const before = fs.existsSync(outFolder) ? fs.readdirSync(outFolder) : [];
  const result = await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false, maxExamples: 16 });
  assert.equal(result, undefined);
  assert.equal(fake.shown.filter((s) => s.kind === "error").length, 0);
  assert.match(fake.statusBar.join("\n"), /cancelled/);
  assert.deepEqual(fs.existsSync(outFolder) ? fs.readdirSync(outFolder) : [], before, "no profile written");
  assert.equal(state.snapshot().finished.at(-1)?.outcome, "cancelled");
});

test("a dismissed quick pick cancels quietly", async () => {
  const { run, test: state } = setup();
  fake.quickPicks.push(() => undefined);
  await run("loraDrop.profile");
  assert.equal(fake.shown.length, 0);
  assert.equal(state.snapshot().finished.at(-1)?.outcome, "cancelled");
});

test("training streams its loss curve to the panel; every message passes the webview's validator", async () => {
  const { run, test: state } = setup();
  fake.settings = { ...fake.settings, "train.batchSize": 4 };
  const running = run("loraDrop.train", { model: fx.modelDir, data: fx.dataFile });
  const panel = fake.panels[0]!;
  panel.fromPage({ type: "ready" });
  const report = (await running) as { outDir: string; steps: number; finalLoss: number };
  const steps = panel.posted.filter((m) => (m as { type: string }).type === "trainProgress") as { step: number; loss: number; totalSteps: number }[];
  // 16 examples in batches of 4 for one epoch: 4 optimiser steps, each reported once.
  assert.equal(report.steps, 4);
  assert.deepEqual(steps.map((s) => s.step), [1, 2, 3, 4]);
  assert.equal(steps.at(-1)!.loss, report.finalLoss);
  assert.deepEqual(panel.posted.at(-1), { type: "trainDone", outcome: "completed" });
  for (const m of panel.posted) assert.ok(parseHostMessage(m), JSON.stringify(m).slice(0, 80));
  assert.ok(fs.existsSync(path.join(report.outDir, "adapter_config.json")));
  assert.equal(path.dirname(report.outDir), path.join(fx.root, ".lora-drop", "adapters"));
  assert.equal(state.api().lastTrain()?.steps, 4);
  assert.equal(state.api().panel()?.trainSteps, 4);
});

test("the memory-budget and streaming settings reach the engine in the worker", async () => {
  const { run } = setup();
  // 2 KiB is less than one layer: streaming on, the engine refuses with the budget the setting gave.
  fake.settings = { ...fake.settings, memoryBudget: "2K", stream: "on" };
  const refused = await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false });
  assert.equal(refused, undefined);
  const errors = fake.shown.filter((s) => s.kind === "error");
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /memory budget 2\.0 KiB is smaller than one streamed decoder layer/);
  // Streaming off: the same budget is not used, and the profile runs.
  fake.settings = { ...fake.settings, memoryBudget: "2K", stream: "off" };
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  assert.ok(fs.existsSync(profilePath));
  assert.match(fake.logLines.join("\n"), /not streaming: .* of a 2\.0 KiB budget/);
});

test("prune's threshold prompt offers Evaluate thresholds without a sweep; afterwards it shows the measured loss", async () => {
  const { run, test: state } = setup();
  const profilePath = (await run("loraDrop.profile", { model: fx.modelDir, adapter: fx.adapterDir, data: fx.dataFile, open: false })) as string;
  fake.inputBoxes.push(PRESS_BUTTON, "0.8");
  fake.answers.push({ match: "already exists", choose: "Replace" });
  const report = (await run("loraDrop.prune", FakeUri.file(fx.adapterDir), [])) as { keptLayers: number[] };
  assert.ok(report, "the prune completed after the evaluation");
  const [first, second] = fake.prompts;
  assert.deepEqual(first!.buttons, [EVALUATE_BUTTON_TOOLTIP], "no sweep yet: the button is offered");
  assert.match(first!.prompt, /graph button measures the loss at every T/);
  const sweepFile = sweepPathFor(profilePath, "share");
  assert.equal(state.snapshot().lastSweepPath, sweepFile);
  const sweep = readSweep(sweepFile);
  assert.equal(sweep.profile.created, readProfile(profilePath).created);
  assert.deepEqual(second!.buttons, [], "with a sweep the prompt needs no button");
  const point = sweep.points.find((p) => JSON.stringify(p.kept_layers) === JSON.stringify(report.keptLayers))!;
  const message = (second!.validation as { message: string }).message;
  assert.match(message, new RegExp(`measured loss ${point.loss.toFixed(4)} \\(full adapter ${sweep.full_loss.toFixed(4)}, base model ${sweep.base_loss.toFixed(4)}\\)`));
  assert.equal(fake.shown.filter((x) => x.kind === "error").length, 0);
});
