/**
 * The "loss vs LoRA parameters" chart in headless Chromium (real HTML, CSP and bundle; fake host): the button and
 * progress before a sweep exists, then one point per measured candidate placed by its parameters and loss, the base
 * model and full adapter reference lines at their losses, and the marker on the point whose kept set the slider's
 * threshold builds (checked against an independent selection), with its loss in the summary. Skips without Chromium.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Page } from "playwright-core";
import { parseWebviewMessage } from "../../extension/viewModel/protocol";
import { makeProfile, makeSweep } from "../unit/viewModel/fixtures";
import { expectedKept, SCREENSHOTS, SKIP_WITHOUT_CHROMIUM, useChromiumPanel, openPanel, pageRecord, sendToPanel, waitForPosted } from "./panelHarness";

/* Browser globals used inside page.evaluate (the host's tsconfig has no DOM lib). */
interface PageElement { getAttribute(name: string): string | null; textContent: string | null; value: string; dispatchEvent(e: unknown): boolean }
declare const document: { querySelector(s: string): PageElement | null; querySelectorAll(s: string): ArrayLike<PageElement> };
declare const window: unknown;
declare const Event: new (type: string, init?: { bubbles: boolean }) => unknown;

interface Drawn { points: { threshold: number; params: number; loss: number; cx: number; cy: number; current: boolean }[]; base: number; full: number; yBase: number; yFull: number; marker: number | null; height: string | null }

/** What the chart drew, read from its SVG. */
function drawn(page: Page): Promise<Drawn> {
  return page.evaluate(() => {
    const num = (e: PageElement | null, a: string) => Number(e?.getAttribute(a));
    const points = Array.from(document.querySelectorAll(".sweep-chart circle.sweep-point")).map((e) => ({
      threshold: num(e, "data-threshold"), params: num(e, "data-params"), loss: num(e, "data-loss"), cx: num(e, "cx"), cy: num(e, "cy"),
      current: (e.getAttribute("class") ?? "").includes("current"),
    }));
    const base = document.querySelector(".sweep-chart line.ref-line.base");
    const full = document.querySelector(".sweep-chart line.ref-line.full");
    const marker = document.querySelector(".sweep-chart circle.sweep-marker");
    return {
      points, base: num(base, "data-loss"), full: num(full, "data-loss"), yBase: num(base, "y1"), yFull: num(full, "y1"),
      marker: marker ? num(marker, "data-threshold") : null, height: document.querySelector(".sweep-chart")?.getAttribute("height") ?? null,
    };
  });
}

/** Sets the slider to `t` as its input event would. */
async function setThreshold(page: Page, t: number): Promise<void> {
  await page.evaluate((v) => {
    const el = document.querySelector("#threshold")!;
    el.value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, t);
  await page.waitForFunction((v) => (window as { __loraDropPanel: { state: { threshold: number } } }).__loraDropPanel.state.threshold === v, t);
}

describe("sweep chart in Chromium", { skip: SKIP_WITHOUT_CHROMIUM }, () => {
  const env = useChromiumPanel();
  const errors: string[] = [];
  // Layer 4 carries no LoRA: it is neither kept nor shared, so 5 candidates.
  const profile = makeProfile({ seed: 42, layers: 6, sequenceLengths: [12, 9, 7], noLoraLayers: [4] });
  const sweep = makeSweep(profile);

  test("Evaluate thresholds, progress and cancel; then points, reference lines and the marker that follows the slider", async () => {
    const page = await openPanel(env.browser, env.server.origin, "dark", undefined, errors);
    await waitForPosted(page, "ready");
    await sendToPanel(page, { type: "profile", slot: "primary", profile, sourcePath: "/w/demo.profile.json" });
    await page.waitForSelector("vscode-button.evaluate-thresholds");
    assert.equal((await drawn(page)).height, "0", "no sweep yet: no chart");
    assert.match(await page.textContent(".sweep-status") ?? "", /No sweep yet/);
    assert.equal(await page.textContent("vscode-button.evaluate-thresholds"), "Evaluate thresholds");
    assert.ok(await page.locator("vscode-button.cancel-evaluation").isHidden());

    let n = (await pageRecord(page)).posted.length;
    await page.click("vscode-button.evaluate-thresholds");
    const ask = await waitForPosted(page, "evaluateThresholds", n);
    assert.deepEqual(parseWebviewMessage(ask), { type: "evaluateThresholds", mode: "share" });
    await sendToPanel(page, { type: "sweepProgress", mode: "share", fraction: 0.4, message: "configuration 3/7" });
    await page.waitForFunction(() => document.querySelector(".sweep-status")?.textContent?.includes("40.0% configuration 3/7"));
    assert.ok(await page.locator("vscode-button.cancel-evaluation").isVisible());
    n = (await pageRecord(page)).posted.length;
    await page.click("vscode-button.cancel-evaluation");
    assert.deepEqual(parseWebviewMessage(await waitForPosted(page, "cancelEvaluation", n)), { type: "cancelEvaluation" });
    await sendToPanel(page, { type: "sweepDone", mode: "share", outcome: "cancelled" });
    await page.waitForFunction(() => document.querySelector(".sweep-status")?.textContent === "Evaluation cancelled.");

    await sendToPanel(page, { type: "sweep", sweep, sourcePath: "/w/demo.profile.sweep.json" });
    await page.waitForSelector(".sweep-chart circle.sweep-point");
    const d = await drawn(page);
    assert.equal(d.points.length, sweep.points.length);
    assert.deepEqual(d.points.map((p) => p.params), sweep.points.map((p) => p.lora_params));
    assert.deepEqual(d.points.map((p) => p.loss), sweep.points.map((p) => p.loss));
    // Reference lines at the base model's and the full adapter's losses; a higher loss is drawn higher up.
    assert.deepEqual([d.base, d.full], [sweep.base_loss, sweep.full_loss]);
    assert.ok(d.yBase < d.yFull);
    // Every point sits where a linear loss axis through the two reference lines puts it, and further right with more parameters.
    for (const p of d.points) {
      const expected = d.yFull + ((p.loss - d.full) / (d.base - d.full)) * (d.yBase - d.yFull);
      assert.ok(Math.abs(p.cy - expected) < 0.01, `T=${p.threshold}: cy ${p.cy} vs ${expected}`);
    }
    d.points.forEach((p, i) => assert.ok(i === 0 || p.cx >= d.points[i - 1]!.cx));
    assert.equal(await page.textContent("vscode-button.evaluate-thresholds"), "Evaluate again");

    // The marker follows the slider: on the point whose kept set is LoRA-drop's at that T.
    for (const t of [0.2, 0.5, 0.75, 0.9, 1]) {
      await setThreshold(page, t);
      const kept = expectedKept(profile, t);
      const point = sweep.points.find((p) => JSON.stringify(p.kept_layers) === JSON.stringify(kept))!;
      const now = await drawn(page);
      assert.equal(now.marker, point.threshold, `T = ${t}`);
      assert.deepEqual(now.points.filter((p) => p.current).map((p) => p.threshold), [point.threshold]);
      const summary = await page.textContent(".prune-loss");
      assert.ok(summary?.includes(`Measured loss before retraining: ${point.loss.toFixed(4)}`), `${summary} at T = ${t}`);
      assert.equal((await page.evaluate(() => (window as { __loraDropPanel: { sweepMarker: number | null } }).__loraDropPanel.sweepMarker)), point.threshold);
    }
    await setThreshold(page, 0.75);
    await page.locator(".sweep-figure").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, "panel-sweep-dark.png"), fullPage: true });

    // Drop mode has no sweep yet: no chart, no loss in the summary, the button offers to measure it.
    await page.getByText("Drop their LoRA").click();
    await page.waitForFunction(() => (window as { __loraDropPanel: { state: { mode: string } } }).__loraDropPanel.state.mode === "drop");
    assert.equal((await drawn(page)).points.length, 0);
    assert.ok(await page.locator(".prune-loss").isHidden());
    assert.equal(await page.textContent("vscode-button.evaluate-thresholds"), "Evaluate thresholds");
    const rec = await pageRecord(page);
    assert.deepEqual(rec.cspViolations, []);
    await page.close();
    assert.deepEqual(errors, []);
  });
});
