/**
 * The first-run walkthrough under a fake `vscode` with the real worker and engine: "Create demo workspace" writes
 * a workspace the other commands work on and opens it; the new window reopens the walkthrough at its next step;
 * and each step's completion context key is set by the outcome the step asks for (a profile saved, the heatmap
 * shown, the threshold moved, a prune written), never by merely starting a command.
 */
import { fake, fakeExtensionContext } from "./fakeVscode";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as vscodeTypes from "vscode";
import { registerCommands } from "../../../extension/host/commands/table";
import { resumeWalkthrough } from "../../../extension/host/commands/createDemo";
import { createHostLog } from "../../../extension/host/log";
import { Services } from "../../../extension/host/services";
import { TestState } from "../../../extension/host/testApi";
import { milestoneContextKey, WALKTHROUGH_STEPS, type Milestone } from "../../../extension/host/walkthrough";
import { DEMO_FILES, DEMO_MARKER } from "../../../extension/core/demo/demoFiles";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { readDataset } from "../../../extension/core/data/dataset";
import { REPO_ROOT, tmpDir } from "../../helpers";

/** One VS Code window: its services, with the global state every window shares. */
function window(roots: string[], globalState: Map<string, unknown>) {
  fake.reset();
  fake.workspaceFolders = roots;
  fake.settings = { maxExamples: 8, maxTokens: 16, device: "cpu" };
  const state = new TestState(undefined);
  const services = new Services(fakeExtensionContext(REPO_ROOT, tmpDir(), globalState) as vscodeTypes.ExtensionContext, createHostLog(), state);
  registerCommands(services);
  return { services, state, run: async (id: string, ...args: unknown[]) => fake.registered.get(id)!(...args) };
}

/** The context keys set to true so far, as milestones. */
function contextKeysSet(): Milestone[] {
  return fake.executed
    .filter((e) => e.command === "setContext" && e.args[1] === true && String(e.args[0]).startsWith("loraDrop.walkthrough."))
    .map((e) => String(e.args[0]).replace("loraDrop.walkthrough.", "") as Milestone);
}

test("create demo → the new window's walkthrough → profile → heatmap → T → prune: each step completes on its outcome", async () => {
  const globalState = new Map<string, unknown>();
  const parent = tmpDir();
  fs.writeFileSync(path.join(parent, "notes.txt"), "the user's own file\n");

  // An empty window: the command asks for a folder, writes into a new folder inside the non-empty one, opens it.
  const first = window([], globalState);
  fake.openDialogs.push([parent]);
  const dir = (await first.run("loraDrop.createDemo")) as string;
  assert.equal(dir, path.join(parent, "lora-drop-demo"), "a folder holding files gets a new lora-drop-demo inside");
  assert.equal(fs.readFileSync(path.join(parent, "notes.txt"), "utf8"), "the user's own file\n");
  assert.deepEqual(fs.readdirSync(dir).sort(), [DEMO_FILES.adapter, DEMO_FILES.data, DEMO_MARKER, DEMO_FILES.model].sort(), "the demo's files and nothing else");
  const config = loadHfModel(path.join(dir, DEMO_FILES.model)).config;
  assert.ok(loadAdapter(path.join(dir, DEMO_FILES.adapter), config).loras.length > 0, "the adapter loads with the model");
  assert.ok(fs.existsSync(path.join(dir, DEMO_FILES.model, "tokenizer.json")), "the model has a real tokenizer");
  assert.equal(readDataset(path.join(dir, DEMO_FILES.data)).length, 96);
  const opened = fake.executed.find((e) => e.command === "vscode.openFolder");
  assert.equal((opened?.args[0] as { fsPath: string }).fsPath, dir, "the demo workspace is opened");
  assert.deepEqual(first.state.snapshot().milestones, ["workspaceReady"]);

  // The window that opened: the walkthrough comes back at "profile", once.
  const second = window([dir], globalState);
  await resumeWalkthrough(second.services);
  const reopened = fake.executed.filter((e) => e.command === "workbench.action.openWalkthrough");
  assert.deepEqual(new Set(reopened.map((e) => JSON.stringify(e.args[0]))), new Set([JSON.stringify({ category: "lora-drop.lora-drop#firstRun", step: "profile" })]));
  await resumeWalkthrough(second.services);
  assert.equal(fake.executed.filter((e) => e.command === "workbench.action.openWalkthrough").length, reopened.length, "only the first activation reopens it");
  assert.deepEqual(contextKeysSet(), ["workspaceReady"]);

  // Profile (the pickers' choices given as arguments): the panel opens; the notification says what was found.
  const profilePath = (await second.run("loraDrop.profile", { model: path.join(dir, DEMO_FILES.model), adapter: path.join(dir, DEMO_FILES.adapter), data: path.join(dir, DEMO_FILES.data) })) as string;
  assert.ok(fs.existsSync(profilePath));
  const found = fake.shown.find((s) => s.kind === "info")!;
  assert.match(found.message, /^Layers \d+, \d+ and \d+ matter most: together \d+% of the LoRA output.*T = 0\.9 keeps \d+ of 8 layers .* Profile saved to \.lora-drop\/adapter-.*\.profile\.json\.$/);
  assert.deepEqual(found.items, ["Prune…"]);
  assert.deepEqual(contextKeysSet(), ["workspaceReady", "profiled"], "the heatmap step waits for the panel to show it");

  const page = fake.panels[0]!;
  page.fromPage({ type: "ready" });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(contextKeysSet(), ["workspaceReady", "profiled", "heatmapShown"]);
  page.fromPage({ type: "stateChanged", threshold: 0.9, mode: "share" });
  await new Promise((r) => setImmediate(r));
  assert.ok(!contextKeysSet().includes("thresholdChosen"), "the page reporting the default threshold is not a choice");
  page.fromPage({ type: "stateChanged", threshold: 0.8, mode: "share" });
  await new Promise((r) => setImmediate(r));
  assert.ok(contextKeysSet().includes("thresholdChosen"), "moving the slider chooses T");

  fake.inputBoxes.push("0.8");
  await second.run("loraDrop.prune", { adapter: path.join(dir, DEMO_FILES.adapter) });
  assert.deepEqual(fake.inputBoxValues, ["0.80"], "the threshold box starts at the T chosen in the panel");
  assert.ok(fs.existsSync(path.join(dir, "adapter-lora-drop-T0.80", "adapter_config.json")));
  assert.deepEqual(contextKeysSet(), ["workspaceReady", "profiled", "heatmapShown", "thresholdChosen", "pruned"]);

  // Every step but the optional training one has been completed by this path, each by its own key.
  const expected = WALKTHROUGH_STEPS.filter((s) => s.id !== "train").map((s) => s.completionEvents[0]);
  assert.deepEqual(expected, contextKeysSet().map((m) => `onContext:${milestoneContextKey(m)}`));
});

test("create demo: an empty chosen folder is used as it is; inside the open workspace nothing reloads", async () => {
  const root = tmpDir();
  const w = window([root], new Map());
  const target = path.join(root, "demo");
  fs.mkdirSync(target);
  const dir = (await w.run("loraDrop.createDemo", { folder: target })) as string;
  assert.equal(dir, target);
  assert.ok(fs.existsSync(path.join(dir, DEMO_MARKER)));
  assert.equal(fake.executed.filter((e) => e.command === "vscode.openFolder").length, 0, "already in the workspace: no reload");
  assert.match(fake.shown.find((s) => s.kind === "info")!.message, /^Demo workspace written to demo: model\/, adapter\/ and data\.jsonl\. Next: profile the adapter\.$/);
});

test("create demo: dismissing the folder dialog cancels quietly and writes nothing", async () => {
  const w = window([], new Map());
  fake.openDialogs.push(undefined);
  await w.run("loraDrop.createDemo");
  assert.deepEqual(w.state.snapshot().finished, [{ command: "loraDrop.createDemo", outcome: "cancelled" }]);
  assert.equal(fake.shown.filter((s) => s.kind === "error").length, 0);
  assert.equal(w.state.snapshot().lastDemoDir, undefined);
});
