/**
 * The panel as VS Code sees it (fake `vscode`): the page is the strict-CSP shell with a fresh nonce and only
 * extension resources, scripts are on, local resources are limited to dist/ and media/, and every message the
 * host posts after `ready` passes the webview's own validator.
 */
import { fake, fakeExtensionContext } from "./fakeVscode";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as vscodeTypes from "vscode";
import { registerCommands } from "../../../extension/host/commands/table";
import { createHostLog } from "../../../extension/host/log";
import { Services } from "../../../extension/host/services";
import { ProfilePanel } from "../../../extension/host/panel";
import { TestState } from "../../../extension/host/testApi";
import { parseHostMessage } from "../../../extension/viewModel/protocol";
import { profileAdapter } from "../../../extension/core/importance/profile";
import { writeProfile } from "../../../extension/core/importance/profileFile";
import { makeFixture, tmpDir, REPO_ROOT } from "../../helpers";

const extensionRoot = REPO_ROOT;

test("Open profile: strict page, limited resource roots, valid messages after ready, compare slot for a second file", async () => {
  const fx = makeFixture();
  const a = path.join(fx.root, ".lora-drop", "a.profile.json");
  const b = path.join(fx.root, ".lora-drop", "b.profile.json");
  const profile = await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 2, maxTokens: 8, device: "cpu" });
  fs.mkdirSync(path.dirname(a), { recursive: true });
  writeProfile(a, profile);
  writeProfile(b, { ...profile, criterion: "weight" });

  fake.reset();
  fake.workspaceFolders = [fx.root];
  const state = new TestState(undefined);
  const services = new Services(fakeExtensionContext(extensionRoot, tmpDir()) as vscodeTypes.ExtensionContext, createHostLog(), state);
  registerCommands(services);
  await fake.registered.get("loraDrop.openProfile")!({ profile: a, compare: b });

  assert.equal(fake.panels.length, 1, "one panel, reused for the second profile");
  const panel = fake.panels[0]!;
  assert.equal(panel.viewType, "loraDrop.panel");
  assert.equal(panel.options.enableScripts, true);
  assert.deepEqual(panel.options.localResourceRoots?.map((u) => u.fsPath), [path.join(extensionRoot, "dist"), path.join(extensionRoot, "media")]);
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(panel.html)?.[1] ?? "";
  assert.match(csp, /default-src 'none'/);
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce && nonce.length >= 16);
  assert.ok(panel.html.includes(`<script nonce="${nonce}" src="https://fake.vscode-cdn.net${path.join(extensionRoot, "dist", "webview", "main.js")}">`));
  assert.equal(panel.posted.length, 0, "no data before the page says ready, and none in the HTML");
  assert.ok(!panel.html.includes(fx.adapterDir), "the page carries no profile data");

  panel.fromPage({ type: "ready" });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(panel.posted.map((m) => parseHostMessage(m) && (m as { type: string; slot?: string }).slot), [undefined, "primary", "compare"], "every message passes the webview's validator");
  assert.deepEqual(parseHostMessage(panel.posted[0]), { type: "settings", threshold: 0.9, mode: "share" }, "the settings (defaults here) come before the profiles");
  const report = state.api().panel()!;
  assert.equal(report.ready, true);
  assert.equal(report.primaryPath, a);
  assert.equal(report.comparePath, b);
  assert.deepEqual(report.keptLayers.length > 0, true);

  ProfilePanel.current?.dispose();
  assert.equal(state.api().panel()?.open, false);
});

test("the panel gets the threshold and mode settings after ready, and again when they change", async () => {
  const fx = makeFixture();
  const file = path.join(fx.root, ".lora-drop", "a.profile.json");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeProfile(file, await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: fx.dataFile, maxExamples: 1, maxTokens: 6, device: "cpu" }));
  fake.reset();
  fake.workspaceFolders = [fx.root];
  fake.settings = { threshold: 0.6, mode: "drop" };
  const state = new TestState(undefined);
  const services = new Services(fakeExtensionContext(extensionRoot, tmpDir()) as vscodeTypes.ExtensionContext, createHostLog(), state);
  registerCommands(services);
  await fake.registered.get("loraDrop.openProfile")!({ profile: file });
  const panel = fake.panels[0]!;
  panel.fromPage({ type: "ready" });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(panel.posted.map((m) => (m as { type: string }).type), ["settings", "profile"]);
  assert.deepEqual(parseHostMessage(panel.posted[0]), { type: "settings", threshold: 0.6, mode: "drop" });
  assert.equal(state.api().panel()?.threshold, 0.6, "until the page reports its own choice, the settings are the panel's");

  fake.changeSettings({ threshold: 0.75 });
  assert.deepEqual(parseHostMessage(panel.posted[2]), { type: "settings", threshold: 0.75, mode: "drop" });
  fake.changeSettings({ maxTokens: 5 });
  fake.changeSettings({ threshold: 0.75 });
  assert.equal(panel.posted.length, 3, "other settings, and unchanged values, send nothing");
  // An invalid value falls back to the default, which the page gets as any other value.
  fake.changeSettings({ mode: "merge" });
  assert.deepEqual(parseHostMessage(panel.posted[3]), { type: "settings", threshold: 0.75, mode: "share" });

  ProfilePanel.current?.dispose();
  assert.equal(fake.configListeners.size, 0, "the closed panel stops listening");
});
