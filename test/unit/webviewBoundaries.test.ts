import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const REPO = join(__dirname, "..", "..", "..");

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? tsFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const importsOf = (file: string): string[] => [...readFileSync(file, "utf8").matchAll(/(?:from|import)\s+["']([^"']+)["']/g)].map((m) => m[1] as string);

test("the webview, the protocol and the view model never import vscode", () => {
  const files = [...tsFiles(join(REPO, "webview")), ...tsFiles(join(REPO, "extension", "viewModel")), join(REPO, "extension", "protocol.ts"), join(REPO, "extension", "panelHtml.ts")];
  for (const f of files) assert.ok(!importsOf(f).includes("vscode"), `${f} imports vscode`);
});

test("the protocol and the view model use neither Node modules nor DOM globals (both sides import them)", () => {
  const files = [...tsFiles(join(REPO, "extension", "viewModel")), join(REPO, "extension", "protocol.ts")];
  for (const f of files) {
    assert.deepEqual(importsOf(f).filter((m) => m.startsWith("node:") || !m.startsWith(".")), [], `${f} imports a package`);
    const code = readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\b(document|window|HTMLElement|localStorage|process|Buffer)\b/, `${f} touches a host- or browser-only global`);
  }
});

test("the webview never writes HTML from strings", () => {
  for (const f of tsFiles(join(REPO, "webview"))) {
    const code = readFileSync(f, "utf8");
    assert.doesNotMatch(code, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\.html\(/, `${f} writes HTML`);
  }
});
