// The first run, end to end in a real VS Code (code-server) driven by Chromium: from an empty window, open the
// walkthrough, create the demo workspace with its button (the folder dialog answered as a user types it), and go on
// in the window that opens: profile, read the heatmap, choose T on the panel's slider, prune; each step must be
// ticked by then. scripts/e2e/run.sh starts the server and runs it (npm run test:e2e).
// Env: VSCODE_URL, DEMO_FOLDER (an empty folder for the demo), TEST_STATE (LORA_DROP_TEST_STATE), E2E_OUT, CHROMIUM.
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SEL, afterPaint, openBrowser, answerInput, clearNotifications, pickItem, readJson, recordToasts, runCommand, toasts, waitUntil, webviewFrame } from "./workbench.mjs";
import { WT, clickStepButton, openStep, passFirstLaunch, stepDone } from "./walkthroughPage.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(import.meta.url);
const { selectAmong } = require(path.join(ROOT, "out/extension/core/importance/selection.js"));
const { loadAdapter } = require(path.join(ROOT, "out/extension/core/adapter/peftAdapter.js"));
const { loadHfModel } = require(path.join(ROOT, "out/extension/core/models/hfModel.js"));

const URL_BASE = process.env.VSCODE_URL ?? "http://127.0.0.1:8080";
const DEMO = process.env.DEMO_FOLDER;
const STATE = process.env.TEST_STATE;
const OUT = process.env.E2E_OUT ?? path.join(ROOT, "test-output/e2e");
fs.mkdirSync(OUT, { recursive: true });
const shot = (name) => path.join(OUT, name);
assert.ok(DEMO && fs.existsSync(DEMO) && fs.readdirSync(DEMO).length === 0, "DEMO_FOLDER names an empty folder");

const t0 = performance.now();
const lap = (label) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2)}s] ${label}`);
/** The extension's test snapshot of the current window (a reload starts a new one). */
const state = () => (STATE ? readJson(STATE) : undefined);
async function commandFinished(id, timeout = 60_000) {
  const done = await waitUntil(() => state()?.finished.filter((e) => e.command === id).pop(), { timeout, what: `${id} to finish` });
  return done.outcome;
}

const { browser, page, step, steps } = await openBrowser(lap);

try {
  await page.goto(`${URL_BASE}/?ew=true`);
  await page.locator(SEL.workbench).waitFor();
  lap("empty window loaded");

  await step("the walkthrough opens from the palette, nothing done yet", async () => {
    await page.locator(SEL.workbench).click({ position: { x: 700, y: 450 } });
    await passFirstLaunch(page);
    await runCommand(page, "LoRA-drop: Get started");
    await page.locator(WT.title, { hasText: "Get started with LoRA-drop" }).waitFor();
    for (const id of ["createDemo", "profile", "heatmap", "threshold", "prune", "train"]) assert.equal(await stepDone(page, id), false, `${id} not done`);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: shot("walkthrough.png") });
  });

  await step("create the demo workspace: the folder is written and opened, the walkthrough comes back at profile", async () => {
    await clickStepButton(page, "createDemo", "Create demo workspace");
    // VS Code's own folder dialog (the simple one in a browser): type the folder, then accept it.
    const input = page.locator(SEL.quickInputBox);
    await waitUntil(async () => /demo workspace/i.test((await page.locator(SEL.quickInput).textContent()) ?? ""), { what: "the folder dialog" });
    await input.fill(`${DEMO}/`);
    await page.locator(`${SEL.quickInput} .monaco-button`, { hasText: "Create demo here" }).click();
    // The command opens the folder: the page navigates to it and the workbench loads again.
    await page.waitForURL((u) => new URL(u).searchParams.get("folder") === DEMO, { timeout: 60_000 });
    await page.locator(SEL.workbench).waitFor();
    for (const f of ["model/config.json", "model/tokenizer.json", "adapter/adapter_config.json", "data.jsonl", "lora-drop-demo.json"]) {
      assert.ok(fs.existsSync(path.join(DEMO, f)), `${f} written`);
    }
    await page.locator(WT.title, { hasText: "Get started with LoRA-drop" }).waitFor({ timeout: 60_000 });
    await waitUntil(() => stepDone(page, "createDemo"), { what: "the first step to be ticked" });
    assert.equal(await stepDone(page, "profile"), false);
  });

  let profile;
  await step("profile from the walkthrough: the notification says what was found and where it was saved", async () => {
    await openStep(page, "profile");
    const seen = await recordToasts(page);
    await clickStepButton(page, "profile", "Profile LoRA outputs");
    await pickItem(page, /Base model folder/, "model");
    await pickItem(page, /LoRA adapter folder/, "adapter");
    await pickItem(page, /Dataset/, "data.jsonl");
    assert.equal(await commandFinished("loraDrop.profile"), "ok");
    const file = state().lastProfilePath;
    profile = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.equal(profile.layers.length, 8);
    const said = await waitUntil(async () => (await seen()).find((t) => t.includes("matter most")), { what: "the profile's summary notification" });
    assert.match(said, /Layers \d+, \d+ and \d+ matter most: together \d+% of the LoRA output/);
    assert.match(said, /T = 0\.9 keeps \d+ of 8 layers/);
    assert.match(said, /Profile saved to \.lora-drop\/adapter-\S+\.profile\.json/);
    const progress = (await seen()).filter((t) => /\d+% · .*(left|done)/.test(t));
    assert.ok(progress.length > 0, `a progress message with a time estimate was shown (${(await seen()).join(" | ")})`);
  });

  const web = webviewFrame(page);
  const canvas = web.locator("canvas.heatmap-canvas");
  await step("the heatmap shows the profile: 8 layers; the walkthrough ticks profile and heatmap", async () => {
    await waitUntil(async () => (await web.locator("body").evaluate(() => window.__loraDropPanel))?.hasProfile, { what: "the panel to show the profile" });
    await waitUntil(async () => Number(await canvas.getAttribute("data-rows")) === 8, { what: "8 heatmap rows" });
    await waitUntil(() => state()?.milestones.includes("heatmapShown"), { what: "the heatmap milestone" });
  });

  let threshold;
  await step("choose T with the panel's slider", async () => {
    const slider = web.locator("input.threshold-slider");
    await slider.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press("ArrowLeft");
    threshold = Number(await slider.inputValue());
    assert.ok(Math.abs(threshold - 0.8) < 1e-9, `T moved to 0.8 (${threshold})`);
    await waitUntil(() => state()?.panel?.threshold === threshold, { what: "the host to receive the new T" });
    await waitUntil(() => state()?.milestones.includes("thresholdChosen"), { what: "the threshold milestone" });
    await clearNotifications(page);
    await afterPaint(web);
    await page.screenshot({ path: shot("panel-demo.png") });
  });

  await step("prune from the walkthrough at the panel's T: the adapter written keeps the layers the profile says", async () => {
    await runCommand(page, "LoRA-drop: Get started");
    await openStep(page, "prune");
    for (const id of ["createDemo", "profile", "heatmap", "threshold"]) assert.equal(await stepDone(page, id), true, `${id} is ticked`);
    await clickStepButton(page, "prune", "Prune adapter");
    await pickItem(page, /LoRA adapter folder/, "adapter");
    const offered = await answerInput(page, /LoRA-drop: threshold/);
    assert.equal(Number(offered), threshold, "the threshold box starts at the T chosen on the slider");
    assert.equal(await commandFinished("loraDrop.prune"), "ok");
    const prune = state().lastPrune;
    assert.equal(prune.outDir, path.join(DEMO, "adapter-lora-drop-T0.80"));
    const expected = selectAmong(profile.importance.per_layer, profile.layers.map((_, i) => i), { threshold });
    assert.deepEqual(prune.keptLayers, expected.kept.map((i) => profile.layers[i]));
    const pruned = loadAdapter(prune.outDir, loadHfModel(path.join(DEMO, "model")).config);
    assert.deepEqual(pruned.loraDrop.kept_layers, prune.keptLayers);
    assert.ok(prune.sharedLayers.length >= 2, `some layers share one LoRA (${prune.sharedLayers})`);
    await waitUntil(() => stepDone(page, "prune"), { what: "the prune step to be ticked" });
    await waitUntil(async () => (await toasts(page, "LoRA-drop: pruning").count()) === 0, { what: "the progress notification to close" });
    await clearNotifications(page);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: shot("walkthrough-done.png") });
  });

  console.log(`${steps.passed} passed, 0 failed`);
} catch (err) {
  await page.screenshot({ path: shot("walkthrough-failure.png") }).catch(() => {});
  console.error(err);
  console.log(`${steps.passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  await browser.close();
  lap("done");
}
