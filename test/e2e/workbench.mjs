// Helpers that drive VS Code's workbench (code-server 4.100.3 = VS Code 1.100.3) the way a user does, with
// playwright-core. Every wait is on a condition; the only retries are the two the workbench makes necessary
// (see runCommand and explorerContextMenu).
import fs from "node:fs";
import { chromium } from "playwright-core";

/** Selectors of the workbench's DOM in VS Code 1.100 (not an API: checked again when code-server is upgraded). */
/**
 * Headless Chromium on one page for the workbench, and `step(name, body)`, which runs a test step and logs
 * `ok N - name` with `lap`; `steps.passed` counts the steps that passed.
 */
export async function openBrowser(lap) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // A fresh temporary profile is launch()'s default (it rejects --user-data-dir in args).
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30_000);
  const steps = { passed: 0 };
  const step = async (name, body) => {
    await body();
    steps.passed++;
    lap(`ok ${steps.passed} - ${name}`);
  };
  return { browser, page, step, steps };
}

export const SEL = {
  workbench: ".monaco-workbench",
  quickInput: ".quick-input-widget",
  quickInputBox: ".quick-input-widget .quick-input-box input",
  quickInputRow: ".quick-input-widget .quick-input-list .monaco-list-row",
  explorerRow: ".explorer-folders-view .monaco-list-row",
  toast: ".notifications-toasts .notification-toast",
  toastMessage: ".notification-list-item-message",
  errorIcon: ".notification-list-item-icon.codicon-error",
  // The webview host iframe, and inside it the frame that holds the extension's HTML.
  webviewOuter: "iframe.webview.ready",
  webviewInner: "#active-frame",
};

/** Polls `check` (sync or async) until it returns a truthy value, which it then returns; throws after `timeout` ms. */
export async function waitUntil(check, { timeout = 30_000, interval = 100, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Reads a JSON file, or undefined while it does not exist or is being replaced. */
export function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** The quick-input row whose label is exactly `label`. */
export function quickRow(page, label) {
  return page.locator(SEL.quickInputRow).filter({ has: page.locator(".label-name", { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) }).first();
}

/**
 * Runs a command from the palette (F1, its title, then a click on the row with exactly that title: Enter would run
 * the first row, which the fuzzy sort does not always make the exact match). Retries: the palette lists only
 * the commands whose contributions were registered when it opened, and an extension's register a moment after the
 * workbench renders.
 */
export async function runCommand(page, title, attempts = 5) {
  const input = page.locator(SEL.quickInputBox);
  const row = quickRow(page, title);
  for (let i = 1; ; i++) {
    await page.keyboard.press("F1");
    await input.waitFor();
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ timeout: 3_000 });
      await row.click();
      return;
    } catch (err) {
      if (i >= attempts) throw err;
      await page.keyboard.press("Escape");
      await input.waitFor({ state: "hidden" });
    }
  }
}

/**
 * Answers a quick pick: waits until its prompt (placeholder or title) matches `prompt`, filters by `label`, and
 * clicks the row labelled exactly `label`. Returns the prompt it saw.
 */
export async function pickItem(page, prompt, label) {
  const input = page.locator(SEL.quickInputBox);
  const seen = await waitUntil(async () => {
    const p = await quickPrompt(page);
    return p !== undefined && prompt.test(p) && p;
  }, { what: `a quick pick asking ${prompt}` });
  await input.fill(label);
  await quickRow(page, label).click();
  return seen;
}

/** The visible quick input's placeholder, title and message, or undefined while none is shown. Never waits. */
export async function quickPrompt(page) {
  return page.evaluate((sel) => {
    const w = document.querySelector(sel);
    if (!w || getComputedStyle(w).display === "none") return undefined;
    const input = w.querySelector(".quick-input-box input");
    return [input?.getAttribute("placeholder"), w.querySelector(".quick-input-title")?.textContent, w.querySelector(".quick-input-message")?.textContent]
      .filter(Boolean).join(" | ");
  }, SEL.quickInput);
}

/** Answers an input box whose prompt matches `prompt`: optionally replaces its value, then presses Enter. Returns the value it had. */
export async function answerInput(page, prompt, value) {
  const input = page.locator(SEL.quickInputBox);
  await waitUntil(async () => prompt.test((await quickPrompt(page)) ?? ""), { what: `an input box asking ${prompt}` });
  const before = await input.inputValue();
  if (value !== undefined) await input.fill(value);
  await input.press("Enter");
  return before;
}

/** The Explorer row of a file or folder (exact name). */
export function explorerRow(page, name) {
  return page.locator(SEL.explorerRow).filter({ has: page.locator(".label-name", { hasText: new RegExp(`^${escapeRegExp(name)}$`) }) });
}

/**
 * Right-clicks `name` in the Explorer and runs the context-menu item `item`. Retries because the menu is built
 * from the contributions known at right-click time, and an extension's menus register a little after the
 * Explorer renders. The item is hovered and triggered with Enter: a mouse click on it was seen to be ignored.
 * `beforeRun(page)` runs while the menu is open (for a screenshot).
 */
export async function explorerContextMenu(page, name, item, { attempts = 5, beforeRun } = {}) {
  const row = explorerRow(page, name);
  const entry = page.getByRole("menuitem", { name: item });
  for (let i = 1; ; i++) {
    await row.click({ button: "right" });
    try {
      await entry.waitFor({ timeout: 3_000 });
      await entry.hover();
      if (beforeRun) await beforeRun(page);
      await page.keyboard.press("Enter");
      await entry.waitFor({ state: "hidden", timeout: 3_000 });
      return;
    } catch (err) {
      if (i >= attempts) throw err;
      await page.keyboard.press("Escape");
    }
  }
}

/** The webview's content frame (the extension's HTML inside VS Code's webview host iframe). */
export function webviewFrame(page) {
  return page.frameLocator(SEL.webviewOuter).frameLocator(SEL.webviewInner);
}

/** Visible notification toasts whose message contains `text` (string or RegExp). */
export function toasts(page, text) {
  const all = page.locator(SEL.toast);
  return text === undefined ? all : all.filter({ has: page.locator(SEL.toastMessage, { hasText: text }) });
}

/**
 * Starts recording every notification toast message that appears (a MutationObserver in the page), so a
 * notification that comes and goes between two checks is not missed. Returns a function that reads the list.
 */
export async function recordToasts(page) {
  const key = `__toasts${Math.random().toString(36).slice(2)}`;
  await page.evaluate(({ key, sel }) => {
    const seen = (window[key] = []);
    const scan = () => {
      for (const el of document.querySelectorAll(sel)) {
        const t = el.textContent ?? "";
        if (t && !seen.includes(t)) seen.push(t);
      }
    };
    new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, characterData: true });
    scan();
  }, { key, sel: `${SEL.toast} ${SEL.toastMessage}` });
  return () => page.evaluate((key) => [...window[key]], key);
}

/** Dismisses every notification and waits until none is shown (for screenshots). */
export async function clearNotifications(page) {
  await runCommand(page, "Notifications: Clear All Notifications");
  await waitUntil(async () => (await toasts(page).count()) === 0, { what: "no notifications" });
}

/** Switches the colour theme with "Preferences: Color Theme" and waits until the workbench wears it. */
export async function setColorTheme(page, themeLabel, kind) {
  await runCommand(page, "Preferences: Color Theme");
  await pickItem(page, /theme/i, themeLabel);
  const cls = kind === "light" ? "vs" : kind === "dark" ? "vs-dark" : "hc-black";
  await waitUntil(async () => (await page.locator(SEL.workbench).getAttribute("class")).split(/\s+/).includes(cls), { what: `the ${kind} theme` });
  await page.locator(SEL.quickInput).waitFor({ state: "hidden" });
}

/** Resolves after the webview has painted two more frames (its canvas redraws on requestAnimationFrame). */
export async function afterPaint(frame) {
  await frame.locator("body").evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(undefined)))));
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
