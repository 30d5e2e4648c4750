/**
 * The structure the code keeps, checked on the sources: no import cycle between files or between the engine's
 * folders, the engine and everything the worker process loads free of `vscode`, the host's pure modules free of it
 * too (they are unit-tested without it), and the panel's model and protocol free of Node and DOM globals (both
 * sides import them).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../helpers";

/** Module specifiers a file imports: static imports and re-exports (type-only included), dynamic imports, requires. */
function importsOf(file: string): string[] {
  const code = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs = [
    ...code.matchAll(/(?:^|[\s;])(?:import|export)\s[^"';]*?\sfrom\s*["']([^"']+)["']/g),
    ...code.matchAll(/(?:^|[\s;])import\s*["']([^"']+)["']/g),
    ...code.matchAll(/\b(?:import|require)\(\s*["']([^"']+)["']\s*\)/g),
  ];
  return specs.map((m) => m[1]!);
}

/** The source file a relative specifier names, or undefined for packages and Node modules. */
function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, base.replace(/\.js$/, ".ts"), path.join(base, "index.ts")].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

function tsFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

/** The import graph of every TypeScript file of the project (sources, webview, scripts, tests). */
function importGraph(): Map<string, string[]> {
  const files = ["extension", "webview", "scripts", "test"].flatMap((d) => tsFiles(path.join(REPO_ROOT, d)));
  return new Map(files.map((f) => [f, importsOf(f).map((s) => resolve(f, s)).filter((t): t is string => t !== undefined)]));
}

/** Strongly connected components with more than one member, or a member importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Every file reachable through relative imports from `entry`, with its imports. */
function closure(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const specs = importsOf(file);
    seen.set(file, specs);
    for (const s of specs) {
      const target = resolve(file, s);
      if (target) visit(target);
    }
  };
  visit(entry);
  return seen;
}

const rel = (f: string) => path.relative(REPO_ROOT, f);

test("no import cycle between files (type-only and dynamic imports included)", () => {
  const graph = importGraph();
  assert.ok(graph.size > 150, `the graph covers the project (${graph.size} files)`);
  assert.deepEqual(cycles(graph).map((c) => c.map(rel).sort()), []);
});

test("the engine's folders depend on each other in one direction only", () => {
  const core = path.join(REPO_ROOT, "extension", "core");
  const folderOf = (f: string) => path.relative(core, f).split(path.sep)[0]!;
  const folders = new Map<string, Set<string>>();
  for (const [f, targets] of importGraph()) {
    if (!f.startsWith(core + path.sep)) continue;
    const from = folderOf(f);
    const deps = folders.get(from) ?? new Set<string>();
    for (const t of targets) if (t.startsWith(core + path.sep) && folderOf(t) !== from) deps.add(folderOf(t));
    folders.set(from, deps);
  }
  assert.ok(folders.size >= 8, `core is split into folders (${[...folders.keys()].join(", ")})`);
  const graph = new Map([...folders].map(([k, v]) => [k, [...v]]));
  assert.deepEqual(cycles(graph), [], `folder dependencies: ${JSON.stringify(Object.fromEntries(graph))}`);
  const loose = tsFiles(core).filter((f) => path.dirname(f) === core).map(rel);
  assert.deepEqual(loose, [], "every engine module sits in a folder of its layer");
});

test("the engine (extension/core) never imports vscode", () => {
  for (const f of tsFiles(path.join(REPO_ROOT, "extension", "core"))) assert.ok(!importsOf(f).includes("vscode"), `${rel(f)} imports vscode`);
});

test("nothing the worker process loads imports vscode, and the worker imports nothing of the host", () => {
  const files = closure(path.join(REPO_ROOT, "extension", "worker", "worker.ts"));
  assert.ok(files.size > 10, "the closure reaches the engine");
  for (const [f, imports] of files) {
    assert.ok(!imports.includes("vscode"), `${rel(f)} is loaded by the worker and imports vscode`);
    assert.ok(!f.includes(`${path.sep}extension${path.sep}host${path.sep}`), `${rel(f)} is host code loaded by the worker`);
  }
});

test("the host's pure modules stay free of vscode (they are unit-tested without it)", () => {
  const pure = ["manifest", "settings", "paths", "profileIndex", "errorText", "jobRunner", "progressText", "candidates", "commandArgs", "panelController", "panelSweeps", "testApi", "panelHtml", "pythonChoice"];
  for (const name of pure) {
    for (const [f, imports] of closure(path.join(REPO_ROOT, "extension", "host", `${name}.ts`))) {
      assert.ok(!imports.includes("vscode"), `${rel(f)} (reached from host/${name}.ts) imports vscode`);
    }
  }
});

test("the webview and the view model (with the protocol) never import vscode", () => {
  const files = [...tsFiles(path.join(REPO_ROOT, "webview")), ...tsFiles(path.join(REPO_ROOT, "extension", "viewModel"))];
  for (const f of files) assert.ok(!importsOf(f).includes("vscode"), `${rel(f)} imports vscode`);
});

test("the view model and the protocol, and all they import, use neither Node modules nor DOM globals (both sides import them)", () => {
  const files = new Map<string, string[]>();
  for (const f of tsFiles(path.join(REPO_ROOT, "extension", "viewModel"))) for (const [g, imports] of closure(f)) files.set(g, imports);
  assert.ok([...files.keys()].some((f) => f.includes(`${path.sep}core${path.sep}`)), "the closure reaches the engine's pure modules");
  for (const [f, imports] of files) {
    const outside = imports.filter((m) => m.startsWith("node:") || !m.startsWith("."));
    assert.deepEqual(outside, [], `${rel(f)} (imported by the view model) imports a package`);
    const code = fs.readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\b(document|window|HTMLElement|localStorage|process|Buffer)\b/, `${rel(f)} touches a host- or browser-only global`);
  }
});

test("the webview never writes HTML from strings", () => {
  for (const f of tsFiles(path.join(REPO_ROOT, "webview"))) {
    const code = fs.readFileSync(f, "utf8");
    assert.doesNotMatch(code, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\.html\(/, `${rel(f)} writes HTML`);
  }
});
