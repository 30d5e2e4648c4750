/**
 * The LoRA-drop panel's controls in headless Chromium: the threshold and mode follow the host's `settings` until
 * the user picks their own; every control is reached and worked with the keyboard alone; the threshold, summary
 * and Apply button are on screen without scrolling; the chart colours keep their contrast in every test theme;
 * word-start marks are dimmed markers in the list; all-zero importance keeps every LoRA layer.
 * Run with: npm run build && node --test --test-concurrency=1 out/test/browser
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Page } from "playwright-core";
import type { ProfileFile } from "../../extension/core/importance/profileSchema";
import { parseWebviewMessage } from "../../extension/viewModel/protocol";
import { makeProfile } from "../unit/viewModel/fixtures";
import { expectedKept, SCREENSHOTS, SKIP_WITHOUT_CHROMIUM, useChromiumPanel, openPanel, pageRecord, sendToPanel, waitForPosted, type TestTheme } from "./panelHarness";

/* Browser globals the page callbacks touch (the host's tsconfig has no DOM lib, on purpose). */
interface PageElement {
  id: string;
  tagName: string;
  className: string;
  textContent: string | null;
  value: string;
  classList: { contains(name: string): boolean };
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { left: number; top: number; right: number; bottom: number; width: number; height: number };
  querySelectorAll(s: string): ArrayLike<PageElement>;
}
declare const document: { activeElement: PageElement | null; body: PageElement; querySelector(s: string): PageElement | null; querySelectorAll(s: string): ArrayLike<PageElement> };
declare const window: { innerHeight: number; innerWidth: number; scrollTo(x: number, y: number): void; scrollY: number };
declare function getComputedStyle(el: PageElement): { fill: string; stroke: string; fillOpacity: string; opacity: string; backgroundColor: string };
declare function requestAnimationFrame(callback: () => void): number;

const skip = SKIP_WITHOUT_CHROMIUM;

/** The panel's state as window.__loraDropPanel reports it. */
interface Snapshot {
  state: { threshold: number; mode: string; module: string; scale: string; sequence: number; pinned: { row: number; col: number } | null; thresholdChosen: boolean; modeChosen: boolean };
  keptLayers: number[];
}
const snapshot = (page: Page): Promise<Snapshot> => page.evaluate(() => (window as unknown as { __loraDropPanel: Snapshot }).__loraDropPanel);

async function showProfile(page: Page, profile: ProfileFile, sourcePath = "/work/runs/demo.profile.json"): Promise<void> {
  await sendToPanel(page, { type: "profile", slot: "primary", profile, sourcePath });
  await page.waitForSelector("canvas.heatmap-canvas[data-rows]");
}

/** Waits until `predicate(snapshot)` holds. */
async function until(page: Page, what: string, predicate: (s: Snapshot) => boolean): Promise<Snapshot> {
  for (let i = 0; i < 200; i++) {
    const s = await snapshot(page);
    if (predicate(s)) return s;
    await page.waitForTimeout(20);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await snapshot(page))}`);
}

/** A name for the focused control: its id or first class, a radio's group and value, a button's text. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "body";
    const tag = el.tagName.toLowerCase();
    if (tag === "vscode-radio") return `radio:${el.getAttribute("name")}:${el.getAttribute("value")}`;
    if (tag === "vscode-button") return `button:${(el.textContent ?? "").trim()}`;
    return el.id || el.className.split(" ")[0] || tag;
  });
}

/** Presses Tab until `name` has the focus (at most 30 times); fails when it is never reached. */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    if ((await focused(page)) === name) return;
  }
  assert.fail(`Tab never reached ${name}`);
}

describe("LoRA-drop panel controls in Chromium", { skip }, () => {
  const errors: string[] = [];
  const profile = makeProfile({ seed: 42, layers: 6, sequenceLengths: [12, 9, 7], noLoraLayers: [4] });

  const env = useChromiumPanel();

  test("settings set the threshold and mode until the user moves them; the choice survives a reload", async () => {
    const page = await openPanel(env.browser, env.server.origin, "dark", undefined, errors);
    await waitForPosted(page, "ready");
    // The host sends the settings before the profile.
    await sendToPanel(page, { type: "settings", threshold: 0.6, mode: "drop" });
    await showProfile(page, profile);
    assert.equal(await page.inputValue("#threshold"), "0.6");
    assert.equal((await page.textContent(".apply-prune"))?.trim(), "Apply drop");
    assert.deepEqual((await snapshot(page)).keptLayers, expectedKept(profile, 0.6));
    // The host learns the panel's threshold (its commands prune with it).
    const told = await waitForPosted(page, "stateChanged");
    assert.deepEqual(parseWebviewMessage(told), { type: "stateChanged", threshold: 0.6, mode: "drop" });

    // Changed settings move an untouched slider.
    await sendToPanel(page, { type: "settings", threshold: 0.8, mode: "share" });
    await until(page, "T = 0.8, share", (s) => s.state.threshold === 0.8 && s.state.mode === "share");
    assert.equal(await page.inputValue("#threshold"), "0.8");

    // The user moves the slider: later settings leave the threshold alone, but still set the untouched mode.
    await page.focus("#threshold");
    await page.keyboard.press("ArrowLeft");
    await until(page, "T = 0.79", (s) => s.state.threshold === 0.79 && s.state.thresholdChosen);
    await sendToPanel(page, { type: "settings", threshold: 0.3, mode: "drop" });
    await until(page, "mode drop", (s) => s.state.mode === "drop");
    assert.equal((await snapshot(page)).state.threshold, 0.79);
    assert.equal(await page.inputValue("#threshold"), "0.79");
    // An invalid settings message is refused like any other.
    const n = (await pageRecord(page)).posted.length;
    await sendToPanel(page, { type: "settings", threshold: 0, mode: "drop" });
    assert.match(String((await waitForPosted(page, "webviewError", n)).message), /"settings"/);

    // A reloaded panel keeps the user's threshold over the settings.
    const saved = (await pageRecord(page)).savedState;
    await page.close();
    const restored = await openPanel(env.browser, env.server.origin, "dark", saved, errors);
    await waitForPosted(restored, "ready");
    await sendToPanel(restored, { type: "settings", threshold: 0.5, mode: "share" });
    await showProfile(restored, profile);
    const s = await snapshot(restored);
    assert.deepEqual([s.state.threshold, s.state.mode], [0.79, "share"]);
    await restored.close();
    assert.deepEqual(errors, []);
  });

  test("every control is reached with Tab and works from the keyboard", async () => {
    const page = await openPanel(env.browser, env.server.origin, "dark", undefined, errors);
    await waitForPosted(page, "ready");
    await showProfile(page, profile);
    // One pass of Tab from the top: the controls in reading order, each once.
    const order: string[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press("Tab");
      const name = await focused(page);
      if (order.includes(name) || name === "body") break;
      order.push(name);
    }
    assert.deepEqual(order, [
      "module-select", "radio:scale:linear", "zoom-select", "sequence-filter", "sequence-list", "heatmap-canvas", "button:Evaluate thresholds",
      "threshold", "radio:prune-mode:share", "button:Apply drop-and-share",
      "button:Heatmap PNG", "button:Heatmap CSV", "button:Importance CSV", "button:Importance SVG", "button:Load profile to compare…",
    ]);

    // Now work each one with keys only.
    await page.locator("body").focus();
    await page.evaluate(() => window.scrollTo(0, 0));
    await tabTo(page, "module-select");
    await page.keyboard.press("Space"); // opens the list
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await until(page, "module q_proj", (s) => s.state.module === "q_proj");
    await tabTo(page, "radio:scale:linear");
    await page.keyboard.press("ArrowRight");
    await until(page, "log scale", (s) => s.state.scale === "log");
    assert.equal(await focused(page), "radio:scale:log", "the focus moves with the checked radio");
    await tabTo(page, "sequence-list");
    await page.keyboard.press("End");
    await until(page, "the last sequence", (s) => s.state.sequence === profile.sequences.length - 1);
    await page.keyboard.press("Home");
    await until(page, "sequence 0", (s) => s.state.sequence === 0);
    await page.keyboard.press("ArrowDown");
    await until(page, "sequence 1", (s) => s.state.sequence === 1);
    await tabTo(page, "heatmap-canvas");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowRight");
    await until(page, "pinned (1, 1)", (s) => s.state.pinned?.row === 1 && s.state.pinned.col === 1);
    await tabTo(page, "threshold");
    await page.keyboard.press("ArrowLeft");
    await until(page, "T = 0.89", (s) => s.state.threshold === 0.89);
    await tabTo(page, "radio:prune-mode:share");
    await page.keyboard.press("ArrowRight");
    await until(page, "drop mode", (s) => s.state.mode === "drop");
    // Shift+Tab comes back to the checked radio, not the first one.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Shift+Tab");
    assert.equal(await focused(page), "radio:prune-mode:drop");
    await tabTo(page, "button:Apply drop");
    let n = (await pageRecord(page)).posted.length;
    await page.keyboard.press("Enter");
    const apply = await waitForPosted(page, "applyPrune", n);
    assert.deepEqual(parseWebviewMessage(apply), { type: "applyPrune", requestId: apply.requestId, threshold: 0.89, mode: "drop" });
    await tabTo(page, "button:Heatmap CSV");
    n = (await pageRecord(page)).posted.length;
    await page.keyboard.press("Space");
    const exported = parseWebviewMessage(await waitForPosted(page, "export", n));
    assert.ok(exported?.type === "export" && exported.format === "csv");
    assert.match(exported.fileName, /q_proj/);
    await tabTo(page, "button:Load profile to compare…");
    n = (await pageRecord(page)).posted.length;
    await page.keyboard.press("Enter");
    await waitForPosted(page, "pickCompareProfile", n);
    await page.close();
    assert.deepEqual(errors, []);
  });

  test("threshold, summary and Apply are on screen without scrolling, at editor sizes and with a tall heatmap", async () => {
    const tall = makeProfile({ seed: 3, layers: 40, sequenceLengths: [64, 20] });
    for (const [width, height, p, name] of [[1010, 790, profile, "6 layers"], [1400, 900, profile, "6 layers"], [1010, 790, tall, "40 layers"], [560, 700, tall, "40 layers, narrow"]] as const) {
      const page = await openPanel(env.browser, env.server.origin, "light", undefined, errors);
      await page.setViewportSize({ width, height });
      await waitForPosted(page, "ready");
      await showProfile(page, p, "/a/very/long/path/to/the/workspace/.lora-drop/my-adapter-20261125-214109.profile.json");
      for (const scroll of [0, 400]) {
        await page.evaluate((y) => window.scrollTo(0, y), scroll);
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
        const boxes = await page.evaluate(() =>
          ["#threshold", ".prune-summary", ".apply-prune"].map((sel) => {
            const r = document.querySelector(sel)!.getBoundingClientRect();
            return { sel, top: r.top, bottom: r.bottom, left: r.left, right: r.right, h: window.innerHeight, w: window.innerWidth };
          }));
        for (const b of boxes) {
          assert.ok(b.top >= 0 && b.bottom <= b.h && b.left >= 0 && b.right <= b.w, `${name} at ${width}×${height}, scrolled ${scroll}: ${JSON.stringify(b)}`);
        }
      }
      if (width === 1400 && p === profile) {
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: join(SCREENSHOTS, "panel-light-1400x900.png") });
      }
      if (p === tall && width === 1010) await page.screenshot({ path: join(SCREENSHOTS, "panel-light-40-layers-scrolled.png") });
      await page.close();
    }
    assert.deepEqual(errors, []);
  });

  test("chart colours keep their contrast with the background in the light, dark and high-contrast themes", async () => {
    for (const theme of ["light", "dark", "hc"] as TestTheme[]) {
      const page = await openPanel(env.browser, env.server.origin, theme, undefined, errors);
      await waitForPosted(page, "ready");
      await showProfile(page, profile);
      await page.waitForSelector(".importance-bars rect.bar.shared");
      await page.waitForFunction((cls) => document.body.classList.contains(cls), theme === "hc" ? "vscode-high-contrast" : `vscode-${theme}`);
      // What the eye sees: each mark's colour composited over the page background, then WCAG's contrast ratio.
      const colours = await page.evaluate(() => {
        const rgba = (css: string): number[] => (css.match(/[\d.]+/g) ?? []).map(Number).concat([1]).slice(0, 4);
        const bg = rgba(getComputedStyle(document.body).backgroundColor);
        const seen = (sel: string, prop: "fill" | "stroke"): number[] => {
          const el = document.querySelector(sel)!;
          const st = getComputedStyle(el);
          const c = rgba(prop === "fill" ? st.fill : st.stroke);
          const a = c[3]! * (prop === "fill" ? Number(st.fillOpacity) : 1) * Number(st.opacity);
          return [0, 1, 2].map((i) => a * c[i]! + (1 - a) * bg[i]!);
        };
        return { bg: bg.slice(0, 3), shared: seen(".importance-bars rect.bar.shared", "fill"), kept: seen(".importance-bars rect.bar.kept", "fill"), region: seen(".cumulative-curve .kept-region", "fill"), edge: seen(".cumulative-curve .kept-edge", "stroke") };
      });
      const lum = (rgb: number[]): number => {
        const [r, g, b] = rgb.map((v) => {
          const c = v / 255;
          return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      };
      const contrast = (a: number[], b: number[]): number => {
        const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
        return (hi! + 0.05) / (lo! + 0.05);
      };
      // 3:1 is WCAG's minimum for graphics that carry meaning; the tint behind the curve only has to be visible.
      assert.ok(contrast(colours.shared, colours.bg) >= 3, `${theme}: shared bar ${contrast(colours.shared, colours.bg).toFixed(2)}:1`);
      assert.ok(contrast(colours.kept, colours.bg) >= 3, `${theme}: kept bar ${contrast(colours.kept, colours.bg).toFixed(2)}:1`);
      assert.ok(contrast(colours.edge, colours.bg) >= 3, `${theme}: kept edge ${contrast(colours.edge, colours.bg).toFixed(2)}:1`);
      assert.ok(contrast(colours.region, colours.bg) >= 1.2, `${theme}: kept region ${contrast(colours.region, colours.bg).toFixed(2)}:1`);
      if (theme === "light") {
        // A layer with a tiny share keeps a visible stub; a layer with none (4: no LoRA) has no bar.
        const tiny = structuredClone(profile);
        tiny.importance.per_layer[1] = 1e-6;
        await sendToPanel(page, { type: "profile", slot: "primary", profile: tiny, sourcePath: "/work/runs/tiny.profile.json" });
        await page.waitForFunction(() => document.querySelector(".source-path")?.textContent === "tiny.profile.json");
        const heights = await page.$$eval(".importance-bars rect.bar", (els) => els.map((e) => Number((e as unknown as PageElement).getAttribute("height"))));
        assert.ok(heights[1]! >= 2, `tiny bar ${heights[1]} px`);
        assert.equal(heights[4], 0);
      }
      await page.close();
    }
    assert.deepEqual(errors, []);
  });

  test("word-start marks are dimmed markers in the list and kept exactly in the tooltip; all-zero importance keeps every LoRA layer", async () => {
    const page = await openPanel(env.browser, env.server.origin, "light", undefined, errors);
    await waitForPosted(page, "ready");
    await showProfile(page, profile);
    const list = await page.$$eval(".sequence-list .seq-preview", (els) => els.map((e) => {
      const el = e as unknown as PageElement;
      return { text: el.textContent ?? "", marks: Array.from(el.querySelectorAll(".word-start")).map((m) => m.textContent) };
    }));
    for (const item of list) {
      assert.ok(!item.text.includes("\u2581"), `no raw word-start mark in ${item.text}`);
      assert.ok(item.marks.length > 0 && item.marks.every((m) => /^·+$/.test(m ?? "")), JSON.stringify(item.marks));
    }
    // Sequence 1 (no hostile tokens): the preview is the tokens with each "▁" shown as "·" (newlines as "↵").
    const joined = Array.from(profile.sequences[1]!.tokens.join("").replace(/\u2581/g, "·").replace(/\n/g, "↵"));
    assert.equal(list[1]!.text, joined.length > 80 ? `${joined.slice(0, 79).join("")}…` : joined.join(""));
    // A word-start token's tooltip holds the exact token, the mark wrapped in a dimmed span.
    const col = profile.sequences[0]!.tokens.findIndex((t, i) => i > 6 && t.startsWith("\u2581"));
    await page.locator("canvas.heatmap-canvas").scrollIntoViewIfNeeded();
    const g = await page.$eval("canvas.heatmap-canvas", (c) => {
      const el = c as unknown as PageElement & { dataset: Record<string, string> };
      const r = el.getBoundingClientRect();
      return { x: r.left + Number(el.dataset.left), y: r.top + Number(el.dataset.top), cw: Number(el.dataset.cellWidth), rh: Number(el.dataset.rowHeight) };
    });
    await page.mouse.move(g.x + (col + 0.5) * g.cw, g.y + 0.5 * g.rh);
    await page.waitForSelector(".heatmap-tooltip:not([hidden])");
    const tip = await page.$eval(".heatmap-tooltip .tt-token", (e) => ({ text: e.textContent, mark: e.querySelector(".word-start")?.textContent }));
    assert.deepEqual(tip, { text: profile.sequences[0]!.tokens[col], mark: "\u2581" });
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SCREENSHOTS, "panel-light-word-start.png") });

    // Every importance zero: no evidence to prune on, so every layer with a LoRA is kept (layer 4 has none).
    const zero = structuredClone(profile);
    for (const m of zero.modules) for (const perLayer of zero.norms![m]!) for (const perSeq of perLayer) perSeq.fill(0);
    const zeros = zero.layers.map(() => 0);
    zero.importance = { per_layer_raw: zeros, per_layer: zeros, per_module_raw: { q_proj: zeros, v_proj: zeros }, per_module: { q_proj: zeros, v_proj: zeros } };
    await sendToPanel(page, { type: "profile", slot: "primary", profile: zero, sourcePath: "/work/runs/zero.profile.json" });
    const want = [0, 1, 2, 3, 5];
    assert.deepEqual(expectedKept(zero, 0.9), want);
    const s = await until(page, "the all-zero profile", (x) => x.keptLayers.join() === want.join());
    assert.deepEqual(s.keptLayers, want);
    assert.equal(await page.locator(".importance-bars rect.bar.kept").count(), want.length);
    assert.match(await page.textContent(".prune-summary") ?? "", /All importances are zero, so LoRA-drop keeps all 5 layers/);
    await page.close();
    assert.deepEqual(errors, []);
  });
});
