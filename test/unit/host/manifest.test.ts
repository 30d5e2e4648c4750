/**
 * package.json's extension manifest against the host's source of truth (extension/host/manifest.ts) and the code:
 * every command has a handler, every handler a contributed command, settings defaults agree with the reader
 * and the trainer, menus name real commands, and the entry point exists.
 */
import "./fakeVscode";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ACTIVATION_EVENTS, COMMANDS, MEMORY_BUDGET_PATTERN, MENUS, PANEL_VIEW_TYPE, SETTINGS, contributes } from "../../../extension/host/manifest";
import { commandTable } from "../../../extension/host/commands/table";
import { defaultSettings, memoryBudgetBytes } from "../../../extension/host/settings";
import { TRAIN_DEFAULTS } from "../../../extension/core/train/settings";
import { ENGINE_CHOICES, ENGINE_DEVICES } from "../../../extension/core/torch/engineChoice";
import { TORCH_DTYPES } from "../../../extension/core/torch/protocol";
import type { Services } from "../../../extension/host/services";
import { REPO_ROOT } from "../../helpers";
import { WALKTHROUGH_STEPS, milestoneContextKey, type Milestone } from "../../../extension/host/walkthrough";

const root = REPO_ROOT;
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

test("package.json contributes exactly what manifest.ts declares (run scripts/syncManifest.mjs after changing it)", () => {
  assert.deepEqual(pkg.contributes, JSON.parse(JSON.stringify(contributes())));
  assert.deepEqual(pkg.activationEvents, ACTIVATION_EVENTS);
});

test("the command ids and titles the e2e test relies on", () => {
  const titles = Object.fromEntries(pkg.contributes.commands.map((c: { command: string; title: string }) => [c.command, c.title]));
  assert.equal(titles["loraDrop.profile"], "LoRA-drop: Profile LoRA outputs");
  assert.equal(titles["loraDrop.prune"], "LoRA-drop: Prune adapter");
  assert.equal(titles["loraDrop.openProfile"], "LoRA-drop: Open profile");
  assert.equal(titles["loraDrop.runPipeline"], "LoRA-drop: Run LoRA-drop pipeline");
  assert.equal(titles["loraDrop.train"], "LoRA-drop: Train LoRA adapter");
});

test("the commands table has one handler per contributed command, and no other", () => {
  const table = commandTable({} as Services);
  assert.deepEqual(Object.keys(table).sort(), pkg.contributes.commands.map((c: { command: string }) => c.command).sort());
  for (const handler of Object.values(table)) assert.equal(typeof handler, "function");
});

test("every menu entry names a contributed command; the Explorer entries are where the issue puts them", () => {
  const ids = new Set(COMMANDS.map((c) => c.command));
  for (const items of Object.values(MENUS)) for (const item of items) assert.ok(ids.has(item.command), item.command);
  const explorer = pkg.contributes.menus["explorer/context"] as { command: string; when: string }[];
  const prune = explorer.find((m) => m.command === "loraDrop.prune")!;
  assert.match(prune.when, /resourceFilename == adapter_config\.json/);
  assert.match(prune.when, /resourceFilename == adapter_model\.safetensors/);
  assert.match(prune.when, /explorerResourceIsFolder/);
  assert.match(explorer.find((m) => m.command === "loraDrop.openProfile")!.when, /resourceExtname == \.json/);
});

test("settings: package.json defaults are the reader's defaults; the trainer's defaults agree", () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default: unknown }>;
  assert.deepEqual(Object.keys(props).sort(), Object.keys(SETTINGS).sort());
  const d = defaultSettings();
  const flat: Record<string, unknown> = {
    "loraDrop.engine": d.engine, "loraDrop.pythonPath": d.pythonPath, "loraDrop.dtype": d.dtype,
    "loraDrop.device": d.device, "loraDrop.memoryBudget": d.memoryBudget ?? "", "loraDrop.stream": d.stream, "loraDrop.threshold": d.threshold, "loraDrop.sampleFraction": d.sampleFraction,
    "loraDrop.maxExamples": d.maxExamples, "loraDrop.maxTokens": d.maxTokens, "loraDrop.outputFolder": d.outputFolder,
    "loraDrop.mode": d.mode, "loraDrop.outputFormat": d.outputFormat,
    "loraDrop.train.rank": d.train.rank, "loraDrop.train.alpha": d.train.loraAlpha, "loraDrop.train.targetModules": d.train.targetModules,
    "loraDrop.train.epochs": d.train.epochs, "loraDrop.train.learningRate": d.train.learningRate, "loraDrop.train.batchSize": d.train.batchSize,
  };
  for (const [key, value] of Object.entries(flat)) assert.deepEqual(props[key]!.default, value, key);
  // The stated defaults.
  assert.equal(d.threshold, 0.9);
  assert.equal(d.sampleFraction, 0.1);
  assert.equal(d.outputFolder, ".lora-drop");
  assert.deepEqual([d.engine, d.pythonPath, d.dtype, d.device], ["onnx", "", "float32", "auto"], "the zero-install engine by default");
  assert.deepEqual([d.train.rank, d.train.loraAlpha, d.train.targetModules, d.train.epochs, d.train.learningRate, d.train.batchSize],
    [TRAIN_DEFAULTS.r, TRAIN_DEFAULTS.loraAlpha, TRAIN_DEFAULTS.targets, TRAIN_DEFAULTS.epochs, TRAIN_DEFAULTS.lr, TRAIN_DEFAULTS.batchSize]);
});

test("the settings editor's memory-budget pattern accepts exactly the sizes the reader accepts", () => {
  const props = pkg.contributes.configuration.properties as Record<string, { pattern?: string; default: unknown; enum?: string[] }>;
  assert.equal(props["loraDrop.memoryBudget"]!.pattern, MEMORY_BUDGET_PATTERN);
  assert.equal(props["loraDrop.memoryBudget"]!.default, "");
  assert.deepEqual(props["loraDrop.stream"]!.enum, ["auto", "on", "off"]);
  const pattern = new RegExp(MEMORY_BUDGET_PATTERN);
  // Zero and sub-byte sizes match the grammar but are not positive: the reader alone rejects them.
  const samples = ["", "  ", "6G", "6g", "1500M", "1.5GiB", "1.5gib", "512k", "512 KB", "4096", " 7 T ", "2tb", "6ib",
    "6 gigs", "-1G", "G", "1e9", "6GB6", "1.G", ".5G", "6P", "6 G B", "auto"];
  for (const text of samples) {
    const reader = text.trim() === "" || memoryBudgetBytes(text) !== undefined;
    assert.equal(pattern.test(text), reader, JSON.stringify(text));
  }
  assert.ok(pattern.test("0") && memoryBudgetBytes("0") === undefined);
});

test("the walkthrough: its steps link to contributed commands, show files the package ships, and complete on milestones", () => {
  const [walkthrough] = pkg.contributes.walkthroughs as { id: string; steps: { id: string; description: string; media: Record<string, string>; completionEvents: string[] }[] }[];
  assert.deepEqual(walkthrough!.steps.map((s) => s.id), ["createDemo", "profile", "heatmap", "threshold", "prune", "train"]);
  const ids = new Set(COMMANDS.map((c) => c.command));
  const milestones: Milestone[] = ["workspaceReady", "profiled", "heatmapShown", "thresholdChosen", "pruned", "trained"];
  walkthrough!.steps.forEach((step, i) => {
    for (const [, id] of step.description.matchAll(/\(command:([\w.]+)\)/g)) assert.ok(ids.has(id as never), `${step.id} links to ${id}, a contributed command`);
    const media = step.media.markdown ?? step.media.image;
    assert.ok(media && fs.existsSync(path.join(root, media)), `${step.id}'s media ${media} exists`);
    assert.deepEqual(step.completionEvents, [`onContext:${milestoneContextKey(milestones[i]!)}`], `${step.id} completes on its own milestone`);
  });
  assert.ok(walkthrough!.steps.slice(0, 5).every((s) => /\(command:loraDrop\./.test(s.description) || s.id === "threshold"), "every step but choosing T has a button");
  assert.equal(WALKTHROUGH_STEPS.length, walkthrough!.steps.length);
});

test("the engine settings offer the engine's own lists: engines, every device of either engine, the torch dtypes", () => {
  const props = pkg.contributes.configuration.properties as Record<string, { enum?: string[] }>;
  assert.deepEqual(props["loraDrop.engine"]!.enum, [...ENGINE_CHOICES]);
  assert.deepEqual([...props["loraDrop.device"]!.enum!].sort(), [...ENGINE_DEVICES].sort());
  assert.deepEqual(props["loraDrop.dtype"]!.enum, [...TORCH_DTYPES]);
});

test("entry point, extension kind, engine and panel activation", () => {
  assert.equal(pkg.main, "./out/extension/extension.js");
  assert.ok(fs.existsSync(path.join(root, pkg.main)), "the compiled entry point exists");
  assert.ok(fs.existsSync(path.join(root, "out/extension/worker/worker.js")), "the worker script is compiled");
  assert.deepEqual(pkg.extensionKind, ["workspace"]);
  assert.equal(pkg.engines.vscode, "^1.100.0");
  assert.ok(pkg.activationEvents.includes(`onWebviewPanel:${PANEL_VIEW_TYPE}`));
  assert.ok(fs.existsSync(path.join(root, pkg.icon)), "the icon exists");
});
