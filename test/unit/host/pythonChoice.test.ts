/**
 * The torch engine's interpreter as the extension chooses it: the setting first; else the Python extension's
 * selected interpreter through its environments API (activated first when it is not yet active); else the
 * engine's default. A fake stands in for ms-python.python, including the ways it can fail: absent, an older
 * release without the API, nothing selected, an unresolved environment, a throwing call.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { choosePython, describePick, type ExtensionLike } from "../../../extension/host/pythonChoice";

/** A fake Python extension whose environments API answers as given. */
function fakeExtension(environments: unknown, isActive = true): ExtensionLike & { activated: number; resources: unknown[] } {
  const ext = {
    isActive, activated: 0, resources: [] as unknown[],
    activate() { ext.activated++; ext.isActive = true; return Promise.resolve(); },
    exports: { environments },
  };
  return ext;
}

/** An environments API with an active environment `path`, resolved to `executable` (undefined: not resolved). */
function environments(path: string | undefined, executable?: string, calls: unknown[] = []) {
  return {
    getActiveEnvironmentPath(resource: unknown) { calls.push(resource); return path === undefined ? undefined : { id: path, path }; },
    async resolveEnvironment(env: { path: string }) { return executable ? { path: env.path, executable: { uri: { fsPath: executable } } } : undefined; },
  };
}

test("the pythonPath setting wins over the Python extension", async () => {
  const ext = fakeExtension(environments("/venv", "/venv/bin/python"));
  assert.deepEqual(await choosePython(" /opt/py ", ext), { python: "/opt/py", source: "setting" });
  assert.equal(ext.activated, 0, "the Python extension is not even activated");
});

test("without a setting, the Python extension's selected interpreter, resolved to its executable, for the resource", async () => {
  const calls: unknown[] = [];
  const ext = fakeExtension(environments("/home/u/proj/.venv", "/home/u/proj/.venv/bin/python", calls), false);
  const resource = { fsPath: "/home/u/proj/data.jsonl" };
  const pick = await choosePython("", ext, resource);
  assert.deepEqual(pick, { python: "/home/u/proj/.venv/bin/python", source: "python-extension" });
  assert.equal(ext.activated, 1, "an inactive Python extension is activated first");
  assert.deepEqual(calls, [resource]);
  assert.equal(describePick(pick), "/home/u/proj/.venv/bin/python (selected in the Python extension)");
});

test("an environment the Python extension cannot resolve is used by its path", async () => {
  assert.deepEqual(await choosePython("", fakeExtension(environments("/usr/bin/python3.11"))), { python: "/usr/bin/python3.11", source: "python-extension" });
});

test("no Python extension, an old one, nothing selected, or a throwing one: python3 on PATH, saying why", async () => {
  assert.deepEqual(await choosePython("", undefined), { source: "path" });
  const old = await choosePython("", fakeExtension(undefined));
  assert.equal(old.python, undefined);
  assert.match(old.note!, /no environments API/);
  assert.match((await choosePython("", fakeExtension(environments(undefined)))).note!, /no interpreter is selected/);
  const throwing = fakeExtension({ getActiveEnvironmentPath() { throw new Error("not ready"); } });
  const pick = await choosePython("", throwing);
  assert.deepEqual([pick.source, pick.python], ["path", undefined]);
  assert.match(pick.note!, /the Python extension failed: not ready/);
  const failingActivation: ExtensionLike = { isActive: false, activate: () => Promise.reject(new Error("activation failed")), exports: undefined };
  assert.match((await choosePython("", failingActivation)).note!, /activation failed/);
  assert.match(describePick(pick), /^python3 \(python3 on PATH or \$LORA_DROP_PYTHON; the Python extension failed: not ready\)$/);
});
