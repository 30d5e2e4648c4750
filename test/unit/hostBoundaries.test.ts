/**
 * Import boundaries of the host: the engine never imports `vscode`; neither does anything the worker process
 * loads (there is no `vscode` module outside the extension host) nor the modules the host keeps pure for tests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const REPO = path.join(__dirname, "..", "..", "..");

function importsOf(file: string): string[] {
  const code = fs.readFileSync(file, "utf8");
  return [...code.matchAll(/(?:from|import|require\()\s*["']([^"']+)["']/g)].map((m) => m[1]!);
}

/** Every .ts file reachable through relative imports from `entry`. */
function closure(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const imports = importsOf(file);
    seen.set(file, imports);
    for (const spec of imports.filter((s) => s.startsWith("."))) {
      const base = path.resolve(path.dirname(file), spec);
      const target = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
      if (target) visit(target);
    }
  };
  visit(entry);
  return seen;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

test("the engine (extension/core) never imports vscode", () => {
  for (const f of tsFiles(path.join(REPO, "extension", "core"))) assert.ok(!importsOf(f).includes("vscode"), `${f} imports vscode`);
});

test("nothing the worker process loads imports vscode", () => {
  const files = closure(path.join(REPO, "extension", "host", "worker.ts"));
  assert.ok(files.size > 10, "the closure reaches the engine");
  for (const [f, imports] of files) assert.ok(!imports.includes("vscode"), `${path.relative(REPO, f)} is loaded by the worker and imports vscode`);
});

test("the host's pure modules stay free of vscode (they are unit-tested without it)", () => {
  const pure = ["manifest", "settings", "paths", "profileIndex", "errorText", "jobProtocol", "jobValidation", "jobRunner", "progressText", "candidates", "commandArgs", "panelController"];
  for (const name of pure) {
    for (const [f, imports] of closure(path.join(REPO, "extension", "host", `${name}.ts`))) {
      assert.ok(!imports.includes("vscode"), `${path.relative(REPO, f)} (reached from host/${name}.ts) imports vscode`);
    }
  }
  for (const [f, imports] of closure(path.join(REPO, "extension", "testApi.ts"))) assert.ok(!imports.includes("vscode"), f);
});
