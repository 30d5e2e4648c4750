/**
 * Harness for the browser test: serves the real panel HTML (renderPanelHtml) and the bundled script from
 * 127.0.0.1, and opens it in headless Chromium with a fake `acquireVsCodeApi` that records what the panel
 * posts and saves. VS Code's theme variables come from a test stylesheet, which the panel's CSP allows
 * because it is served from the same origin as the panel's own files (VS Code's cspSource).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { after, before } from "node:test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { ProfileFile } from "../../extension/core/importance/profileSchema";
import { makeNonce, renderPanelHtml } from "../../extension/host/panelHtml";
import { REPO_ROOT } from "../helpers";

/** Where the test expects Chromium (CI installs the Debian package); LORA_DROP_CHROMIUM overrides it. */
export const CHROMIUM = process.env.LORA_DROP_CHROMIUM || "/usr/bin/chromium";
/** Flags for a quiet, sandbox-free headless run inside a container. */
/** Where the browser tests write their screenshots and exports. */
export const SCREENSHOTS = join(REPO_ROOT, "test-output", "screenshots");

/** The reason to skip the browser suites (Chromium missing), or false to run them. */
export const SKIP_WITHOUT_CHROMIUM: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Chromium (apt-get install -y chromium) to run the browser tests.`;

/**
 * Starts the panel server and headless Chromium before a suite's tests and stops both after it; call inside a
 * `describe`. The returned object's `browser` and `server` are set once the suite's `before` has run.
 */
export function useChromiumPanel(): { browser: Browser; server: PanelServer } {
  const env = {} as { browser: Browser; server: PanelServer };
  before(async () => {
    const { chromium } = await import("playwright-core");
    env.server = await startPanelServer();
    env.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"];

/* The init script runs in the browser; the host's tsconfig has no DOM lib, so declare what it touches. */
declare const window: unknown;
declare const document: {
  body: { classList: { add(name: string): void } };
  addEventListener(type: "securitypolicyviolation", listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  addEventListener(type: "DOMContentLoaded", listener: () => void): void;
};

const REPO = REPO_ROOT;
const THEMES = join(REPO, "test", "browser", "themes");
const DIST = join(REPO, "dist", "webview");

/** A running static server for the panel. */
export interface PanelServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves `/panel?theme=dark|light`, `/dist/webview/*` and `/theme/*.css`, nothing else. */
export async function startPanelServer(): Promise<PanelServer> {
  if (!existsSync(join(DIST, "main.js"))) throw new Error(`${DIST}/main.js is missing: run "npm run build" first.`);
  let origin = "";
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", origin);
    const send = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/panel") {
      const requested = url.searchParams.get("theme");
      const theme = requested === "light" || requested === "hc" ? requested : "dark";
      const html = renderPanelHtml({ scriptUri: `${origin}/dist/webview/main.js`, styleUri: `${origin}/dist/webview/panel.css`, cspSource: origin, nonce: makeNonce(), title: "LoRA-drop" });
      // VS Code injects its theme variables before any panel stylesheet; the test does the same with a link.
      send(200, "text/html; charset=utf-8", html.replace("<head>", `<head>\n    <link rel="stylesheet" href="${origin}/theme/${theme}.css">`));
      return;
    }
    const served: [string, string, string][] = [["/dist/webview/", DIST, ""], ["/theme/", THEMES, ""]];
    for (const [prefix, dir] of served) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = normalize(join(dir, url.pathname.slice(prefix.length)));
      if (!file.startsWith(dir) || !existsSync(file)) break;
      const type = file.endsWith(".js") ? "text/javascript" : file.endsWith(".css") ? "text/css" : "application/octet-stream";
      send(200, type, readFileSync(file));
      return;
    }
    send(404, "text/plain", "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** What the page records for the test: posted messages, saved state, alerts and CSP violations. */
export interface PageRecord {
  posted: { type: string; [k: string]: unknown }[];
  savedState: unknown;
  alerts: number;
  cspViolations: string[];
}

/** The test themes: VS Code's Dark Modern, Light Modern and Dark High Contrast variables. */
export type TestTheme = "dark" | "light" | "hc";

/** Opens the panel with the given theme and initial saved state; collects console errors into `errors`. */
export async function openPanel(browser: Browser, origin: string, theme: TestTheme, initialState: unknown, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("dialog", (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  // Runs before the panel's script, like VS Code's own preamble that defines acquireVsCodeApi.
  await page.addInitScript(([state, bodyClass]: [unknown, string]) => {
    const w = window as unknown as Record<string, unknown>;
    const record = { posted: [] as unknown[], savedState: state, alerts: 0, cspViolations: [] as string[] };
    w.__record = record;
    w.alert = () => {
      record.alerts++;
    };
    document.addEventListener("securitypolicyviolation", (e) => record.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    // VS Code marks the theme kind on <body>. Setting it only after the panel's script ran also exercises
    // the panel's live theme switch (it watches the class).
    document.addEventListener("DOMContentLoaded", () => document.body.classList.add(bodyClass));
    let acquired = false;
    w.acquireVsCodeApi = () => {
      if (acquired) throw new Error("acquireVsCodeApi may only be called once");
      acquired = true;
      return {
        postMessage: (m: unknown) => record.posted.push(JSON.parse(JSON.stringify(m))),
        getState: () => record.savedState,
        setState: (s: unknown) => {
          record.savedState = JSON.parse(JSON.stringify(s));
        },
      };
    };
  }, [initialState, theme === "hc" ? "vscode-high-contrast" : `vscode-${theme}`] as [unknown, string]);
  await page.goto(`${origin}/panel?theme=${theme}`);
  return page;
}

/** The page's record (a copy). */
export function pageRecord(page: Page): Promise<PageRecord> {
  return page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { __record: unknown }).__record)) as PageRecord);
}

/** Delivers a host message the way VS Code does: a window `message` event carrying a structured clone. */
export async function sendToPanel(page: Page, message: unknown): Promise<void> {
  await page.evaluate((m) => (window as { postMessage(data: unknown, target: string): void }).postMessage(m, "*"), message);
}

/** Waits until the panel has posted a message of `type` beyond the first `after` messages; returns it. */
export async function waitForPosted(page: Page, type: string, after = 0): Promise<{ type: string; [k: string]: unknown }> {
  const handle = await page.waitForFunction(
    ([t, n]) => {
      const posted = (window as unknown as { __record: { posted: { type: string }[] } }).__record.posted;
      return posted.slice(n as number).find((m) => m.type === t) ?? false;
    },
    [type, after] as const,
    { timeout: 10_000 },
  );
  return (await handle.jsonValue()) as { type: string; [k: string]: unknown };
}

/**
 * Kept layers by an independent rule: only layers with LoRA parameters take part, their importance is
 * renormalised, and a layer is kept iff the importance ranked above it is still short of T (all of them when
 * every importance is zero: the threshold is never reached).
 */
export function expectedKept(p: ProfileFile, threshold: number): number[] {
  const candidates = p.layers.map((_, i) => i).filter((i) => p.modules.some((m) => (p.adapter.params[m]?.[i] ?? 0) > 0));
  const total = candidates.reduce((a, i) => a + p.importance.per_layer[i]!, 0);
  const share = (i: number): number => (total > 0 ? p.importance.per_layer[i]! / total : 0);
  return candidates.filter((i) => {
    if (total === 0) return true;
    let before = 0;
    for (const j of candidates) if (share(j) > share(i) || (share(j) === share(i) && j < i)) before += share(j);
    return before < threshold - 1e-12;
  });
}
