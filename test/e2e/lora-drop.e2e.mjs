// End-to-end test of the LoRA-drop extension inside a real VS Code (code-server), driven in Debian's Chromium
// with playwright-core. scripts/e2e/run.sh prepares everything and runs it (npm run test:e2e).
// Env: VSCODE_URL (the server), FIXTURE (makeWorkspace's description of the workspace), TEST_STATE (the file the
// extension mirrors its test snapshot to, LORA_DROP_TEST_STATE), E2E_OUT (screenshots), CHROMIUM.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  SEL, afterPaint, answerInput, clearNotifications, explorerContextMenu, explorerRow, pickItem, readJson, recordToasts, runCommand, setColorTheme, toasts,
  waitUntil, webviewFrame, openBrowser,
} from "./workbench.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(import.meta.url);
// The engine, as compiled by `npm run build`: the test checks the extension's output with the same readers a user
// of the CLI has, and recomputes the expected selection with the engine's selection module.
const { loadAdapter } = require(path.join(ROOT, "out/extension/core/adapter/peftAdapter.js"));
const { ownParam } = require(path.join(ROOT, "out/extension/core/adapter/loraModule.js"));
const { loadHfModel } = require(path.join(ROOT, "out/extension/core/models/hfModel.js"));
const { selectByThreshold } = require(path.join(ROOT, "out/extension/core/importance/selection.js"));
const { readSweep, sweepPathFor } = require(path.join(ROOT, "out/extension/core/sweep/sweepFile.js"));

const URL_BASE = process.env.VSCODE_URL ?? "http://127.0.0.1:8080";
const fx = JSON.parse(fs.readFileSync(process.env.FIXTURE ?? "", "utf8"));
const STATE = process.env.TEST_STATE;
const OUT = process.env.E2E_OUT ?? path.join(ROOT, "test-output/e2e");
fs.mkdirSync(OUT, { recursive: true });
const shot = (name) => path.join(OUT, name);

const t0 = performance.now();
const lap = (label) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2)}s] ${label}`);

/** The extension's test snapshot (see extension/host/testApi.ts), or undefined before it wrote one. */
const state = () => (STATE ? readJson(STATE) : undefined);
/** Waits until the command `id` has finished `count` times in total, and returns the last outcome. */
async function commandFinished(id, count, timeout = 60_000) {
  const done = await waitUntil(() => {
    const f = state()?.finished.filter((e) => e.command === id) ?? [];
    return f.length >= count && f[f.length - 1];
  }, { timeout, what: `${id} to finish (${count})` });
  return done.outcome;
}
const finishedCount = (id) => state()?.finished.filter((e) => e.command === id).length ?? 0;

/** sha256 of every file under `dir`, keyed by relative path. */
function hashTree(dir) {
  const out = {};
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath ?? e.path, e.name);
    out[path.relative(dir, file)] = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  }
  return out;
}
/** Every path under `dir` with its size and mtime: "nothing written" means this does not change. */
function listTree(dir) {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
    .map((f) => { const s = fs.statSync(f); return `${path.relative(dir, f)} ${s.isDirectory() ? "dir" : s.size} ${s.mtimeMs}`; })
    .sort();
}

const { browser, page, step, steps } = await openBrowser(lap);

try {
  const sourceHashes = hashTree(fx.adapterDir);
  await page.goto(`${URL_BASE}/?folder=${encodeURIComponent(fx.workspace)}`);
  await page.locator(SEL.workbench).waitFor();
  await explorerRow(page, path.basename(fx.adapterDir)).waitFor();
  // The extension activates on workspaceContains:**/adapter_config.json and writes its first snapshot then.
  await waitUntil(() => state(), { what: "the extension to activate (test state file)" });
  lap("workbench loaded, extension active");

  let profile;
  await step("profile from the palette", async () => {
    await page.locator(SEL.workbench).click({ position: { x: 700, y: 450 } });
    await runCommand(page, "LoRA-drop: Profile LoRA outputs");
    await pickItem(page, /Base model folder/, path.basename(fx.modelDir));
    await pickItem(page, /LoRA adapter folder/, path.basename(fx.adapterDir));
    const seenToasts = await recordToasts(page);
    await pickItem(page, /Dataset/, path.basename(fx.dataFile));
    // The progress notification shows while the profile runs and goes away when it is done.
    assert.equal(await commandFinished("loraDrop.profile", 1), "ok");
    await waitUntil(async () => (await toasts(page, "LoRA-drop: profiling").count()) === 0, { what: "the progress notification to close" });
    const progress = (await seenToasts()).filter((t) => t.includes(`LoRA-drop: profiling ${path.basename(fx.adapterDir)}`));
    assert.ok(progress.length > 0, "a progress notification was shown");
    const file = state().lastProfilePath;
    assert.ok(file && fs.existsSync(file), `the profile was saved (${file})`);
    assert.ok(file.startsWith(path.join(fx.workspace, fx.outputFolder) + path.sep), `the profile is in the output folder: ${file}`);
    profile = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.equal(profile.layers.length, fx.numLayers);
    assert.equal(path.resolve(profile.adapter.path), fx.adapterDir);
  });

  const web = webviewFrame(page);
  const canvas = web.locator("canvas.heatmap-canvas");
  const panel = () => web.locator("body").evaluate(() => window.__loraDropPanel);
  await step("heatmap shows layers x tokens, tooltip = saved value", async () => {
    await waitUntil(async () => (await panel())?.hasProfile, { what: "the panel to show the profile" });
    await canvas.waitFor();
    const { state: ps } = await panel();
    const seq = profile.sequences[ps.sequence];
    await waitUntil(async () => Number(await canvas.getAttribute("data-rows")) === profile.layers.length, { what: "heatmap rows" });
    assert.equal(Number(await canvas.getAttribute("data-cols")), seq.tokens.length);
    // Hover the centre of cell (row, col) and read the tooltip.
    const row = 2;
    const col = Math.min(3, seq.tokens.length - 1);
    const geo = await canvas.evaluate((c) => ({ ...c.dataset, scrollX: c.closest(".heatmap-scroller")?.scrollLeft ?? 0 }));
    const x = Number(geo.left) + (col + 0.5) * Number(geo.cellWidth) - geo.scrollX;
    const y = Number(geo.top) + (row + 0.5) * Number(geo.rowHeight);
    await canvas.hover({ position: { x, y } });
    const tooltip = web.locator(".heatmap-tooltip");
    await tooltip.waitFor({ state: "visible" });
    // The panel shows the sum over all modules by default ("*"), added in the profile's module order.
    const modules = ps.module === "*" ? profile.modules : [ps.module];
    let expected = 0;
    for (const m of modules) expected += profile.norms[m][row][ps.sequence][col];
    assert.ok(expected > 0, "the hovered cell has a non-zero LoRA output");
    assert.equal(await tooltip.locator(".tt-value").textContent(), String(expected));
    const text = await tooltip.textContent();
    assert.match(text, new RegExp(`Layer ${profile.layers[row]}\\b`));
    assert.match(text, new RegExp(`Token ${col}:`));
    await page.mouse.move(5, 5); // leave the canvas so the tooltip does not cover the screenshot
    await tooltip.waitFor({ state: "hidden" });
    await clearNotifications(page);
    await afterPaint(web);
    await page.screenshot({ path: shot("panel-dark.png") });
  });

  await step("threshold control changes the kept layers", async () => {
    const slider = web.locator("input.threshold-slider");
    const keptAttr = () => canvas.getAttribute("data-kept");
    const expectKept = (t) => selectByThreshold(profile.importance.per_layer, t).kept;
    const before = await keptAttr();
    assert.equal(before, expectKept(Number(await slider.inputValue())).join(","));
    await slider.focus();
    await page.keyboard.press("Home"); // the lowest threshold keeps only the most important layer
    await waitUntil(async () => (await keptAttr()) !== before, { what: "the kept layers to change" });
    assert.equal(Number(await slider.inputValue()), 0.01);
    assert.equal(await keptAttr(), expectKept(0.01).join(","));
    assert.deepEqual((await panel()).keptLayers, expectKept(0.01));
    assert.equal(await web.locator("svg rect.bar.kept").count(), 1);
    // The panel tells the host (debounced), which then reports the same selection.
    await waitUntil(() => state()?.panel?.threshold === 0.01, { what: "the host to receive T = 0.01" });
    assert.deepEqual(state().panel.keptLayers, expectKept(0.01));
    // Back to the configured threshold (End = 1, then down in 0.01 steps), so the prune below uses it.
    await page.keyboard.press("End");
    for (let v = 100; v > Math.round(fx.threshold * 100); v--) await page.keyboard.press("ArrowLeft");
    await waitUntil(async () => Number(await slider.inputValue()) === fx.threshold, { what: "the slider back at the threshold" });
    assert.equal(await keptAttr(), expectKept(fx.threshold).join(","));
    assert.equal(await web.locator("svg rect.bar.kept").count(), expectKept(fx.threshold).length);
    await waitUntil(() => state()?.panel?.threshold === fx.threshold, { what: "the host to receive the threshold again" });
    assert.deepEqual(state().panel.keptLayers, expectKept(fx.threshold));
  });

  await step("Evaluate thresholds: the sweep chart, its marker at the panel's T, and the measured loss", async () => {
    const button = web.locator("vscode-button.evaluate-thresholds");
    await button.scrollIntoViewIfNeeded();
    assert.equal((await button.textContent())?.trim(), "Evaluate thresholds");
    await button.click();
    await waitUntil(() => state()?.lastSweepPath, { what: "the sweep to be written", timeout: 120_000 });
    const file = state().lastSweepPath;
    assert.equal(file, sweepPathFor(state().lastProfilePath, "share"), "saved beside the profile");
    const sweep = readSweep(file);
    await waitUntil(async () => (await panel())?.sweepPoints === sweep.points.length, { what: "the panel to show the sweep" });
    assert.equal(await web.locator(".sweep-chart circle.sweep-point").count(), sweep.points.length);
    assert.equal(Number(await web.locator(".sweep-chart line.ref-line.base").getAttribute("data-loss")), sweep.base_loss);
    assert.equal(Number(await web.locator(".sweep-chart line.ref-line.full").getAttribute("data-loss")), sweep.full_loss);
    // The marker is on the point whose kept set the panel's threshold builds (the engine's own selection).
    const kept = selectByThreshold(profile.importance.per_layer, fx.threshold).kept.map((p) => profile.layers[p]);
    const point = sweep.points.find((p) => JSON.stringify(p.kept_layers) === JSON.stringify(kept));
    assert.ok(point, `the sweep measured the kept set ${kept}`);
    assert.equal(Number(await web.locator(".sweep-chart circle.sweep-marker").getAttribute("data-threshold")), point.threshold);
    assert.match(await web.locator(".prune-loss").textContent(), new RegExp(`Measured loss before retraining: ${point.loss.toFixed(4)}`));
    assert.equal(state().panel.sweeps.join(","), "share");
    await page.mouse.move(5, 5);
    await afterPaint(web);
    await page.screenshot({ path: shot("panel-sweep.png") });
  });

  await step("panel in the light theme", async () => {
    await setColorTheme(page, "Light Modern", "light");
    await waitUntil(async () => (await web.locator("body").getAttribute("class"))?.includes("vscode-light"), { what: "the webview's light theme" });
    await afterPaint(web);
    await page.screenshot({ path: shot("panel-light.png") });
    await setColorTheme(page, "Dark Modern", "dark");
    await waitUntil(async () => (await web.locator("body").getAttribute("class"))?.includes("vscode-dark"), { what: "the webview's dark theme" });
  });

  await step("right-click prune writes the expected adapter", async () => {
    const adapterName = path.basename(fx.adapterDir);
    await explorerContextMenu(page, adapterName, "LoRA-drop: Prune adapter", {
      beforeRun: (p) => p.screenshot({ path: shot("context-menu.png") }),
    });
    const offered = await answerInput(page, /LoRA-drop: threshold/);
    assert.equal(Number(offered), fx.threshold, "the threshold is prefilled");
    assert.equal(await commandFinished("loraDrop.prune", 1), "ok");
    const prune = state().lastPrune;
    const outDir = path.join(path.dirname(fx.adapterDir), `${adapterName}-lora-drop-T0.90`);
    assert.equal(prune.outDir, outDir);
    await explorerRow(page, path.basename(outDir)).waitFor();
    // Reload the new adapter with the engine and check its structure against the profile.
    const model = loadHfModel(fx.modelDir).config;
    const pruned = loadAdapter(outDir, model);
    const source = loadAdapter(fx.adapterDir, model);
    const sel = selectByThreshold(profile.importance.per_layer, fx.threshold);
    const kept = sel.kept.map((p) => profile.layers[p]);
    const shared = sel.shared.map((p) => profile.layers[p]);
    assert.deepEqual(prune.keptLayers, kept);
    assert.deepEqual(prune.sharedLayers, shared);
    assert.deepEqual(pruned.loraDrop.kept_layers, kept);
    assert.deepEqual(pruned.loraDrop.shared_layers, shared);
    assert.equal(pruned.loraDrop.mode, "share");
    assert.ok(kept.length > 0 && shared.length > 0, `T=${fx.threshold} keeps some layers and shares others (${kept} | ${shared})`);
    for (const l of pruned.loras) {
      const src = source.loras.find((s) => s.layer === l.layer && s.module === l.module);
      if (kept.includes(l.layer)) {
        assert.equal(l.param, ownParam(l.layer, l.module));
        assert.deepEqual(l.A, src.A, `kept layer ${l.layer} ${l.module} keeps its A`);
        assert.deepEqual(l.B, src.B, `kept layer ${l.layer} ${l.module} keeps its B`);
      } else {
        assert.equal(l.param, `shared.${l.module}`, `layer ${l.layer} ${l.module} uses the shared LoRA`);
        const first = pruned.loras.find((o) => o.module === l.module && o.layer === shared[0]);
        assert.deepEqual(l.A, first.A);
        assert.deepEqual(l.B, first.B);
      }
    }
    assert.equal(pruned.loras.length, source.loras.length);
    assert.deepEqual(hashTree(fx.adapterDir), sourceHashes, "the source adapter's bytes are unchanged");
  });

  await step("a corrupt adapter gives one clear error and writes nothing", async () => {
    await runCommand(page, "Notifications: Clear All Notifications");
    await waitUntil(async () => (await toasts(page).count()) === 0, { what: "no notifications" });
    const before = listTree(fx.workspace);
    const errorsBefore = state().errors.length;
    const runs = finishedCount("loraDrop.profile");
    await runCommand(page, "LoRA-drop: Profile LoRA outputs");
    await pickItem(page, /Base model folder/, path.basename(fx.modelDir));
    await pickItem(page, /LoRA adapter folder/, path.basename(fx.brokenAdapterDir));
    await pickItem(page, /Dataset/, path.basename(fx.dataFile));
    assert.equal(await commandFinished("loraDrop.profile", runs + 1), "failed");
    const error = toasts(page).filter({ has: page.locator(SEL.errorIcon) });
    // Screenshot once the progress notification has closed and the error has finished fading in.
    await waitUntil(async () => (await toasts(page, "LoRA-drop: profiling").count()) === 0, { what: "the progress notification to close" });
    await error.and(page.locator(".notification-fade-in-done")).waitFor();
    await page.screenshot({ path: shot("error.png") });
    assert.equal(await error.count(), 1, "exactly one error notification");
    const message = await error.locator(SEL.toastMessage).textContent();
    assert.match(message, /adapter_model\.safetensors/, `the error names the file: ${message}`);
    assert.match(message, /truncated/, `the error says what is wrong: ${message}`);
    assert.equal(await error.getByRole("button", { name: "Show log" }).count(), 1, "the error offers its log");
    assert.equal(state().errors.length, errorsBefore + 1, "the extension reported exactly one error");
    assert.deepEqual(listTree(fx.workspace), before, "nothing was written to the workspace");
  });

  console.log(`${steps.passed} passed, 0 failed`);
} catch (err) {
  await page.screenshot({ path: shot("failure.png") }).catch(() => {});
  console.error(err);
  console.log(`${steps.passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  await browser.close();
  lap("done");
}
