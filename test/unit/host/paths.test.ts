/**
 * Where the host reads and writes: adapter folders from Explorer selections, pruned adapter names, the output
 * folder, export targets, and the rule that nothing a webview message carries leads outside the workspace.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import {
  adapterDirOf, checkInsideWorkspace, containingRoot, exportBytes, exportTarget, formatThreshold, isInside,
  outputFolderPath, profileFileName, prunedAdapterDir, slug,
} from "../../../extension/host/paths";
import { isRelativeFolder, readSettings } from "../../../extension/host/settings";

const ws = path.resolve("/work/ws");

test("isInside: the folder itself and its descendants, never siblings with a common prefix or .. escapes", () => {
  assert.ok(isInside(ws, ws));
  assert.ok(isInside(path.join(ws, "a", "b"), ws));
  assert.ok(!isInside(`${ws}-other/x`, ws), "a sibling whose name starts with the same letters");
  assert.ok(!isInside(path.join(ws, "..", "x"), ws));
  assert.ok(!isInside("/etc/passwd", ws));
  assert.equal(containingRoot(path.join(ws, "sub", "f"), [ws, path.join(ws, "sub")]), path.join(ws, "sub"), "the deepest root wins");
  assert.equal(containingRoot("/elsewhere/f", [ws]), undefined);
});

test("adapterDirOf: a folder is itself; adapter_config.json and adapter_model.safetensors mean their folder", () => {
  assert.equal(adapterDirOf(path.join(ws, "ad")), path.join(ws, "ad"));
  assert.equal(adapterDirOf(path.join(ws, "ad", "adapter_config.json")), path.join(ws, "ad"));
  assert.equal(adapterDirOf(path.join(ws, "ad", "adapter_model.safetensors")), path.join(ws, "ad"));
  assert.equal(adapterDirOf(path.join(ws, "ad", "notes.json")), path.join(ws, "ad", "notes.json"));
});

test("pruned adapter folder: <name>-lora-drop-T0.90 next to the source; drop mode is marked", () => {
  assert.equal(prunedAdapterDir(path.join(ws, "my-adapter"), 0.9, "share"), path.join(ws, "my-adapter-lora-drop-T0.90"));
  assert.equal(prunedAdapterDir(path.join(ws, "a", "b") + path.sep, 0.5, "drop"), path.join(ws, "a", "b-lora-drop-T0.50-drop"));
  assert.equal(formatThreshold(1), "1.00");
  assert.equal(formatThreshold(0.925), "0.925");
  assert.equal(formatThreshold(0.12345), "0.12345");
});

test("profile file names are slugs with a sortable time stamp", () => {
  const d = new Date(2025, 0, 31, 23, 5, 9);
  assert.equal(profileFileName(path.join(ws, "My Adapter (v2)"), d), "My_Adapter_v2-20250131-230509.profile.json");
  assert.equal(slug("../../etc"), "etc");
  assert.equal(slug("..."), "adapter");
});

test("output folder: relative inside the workspace only", () => {
  assert.equal(outputFolderPath(ws, ".lora-drop"), path.join(ws, ".lora-drop"));
  assert.equal(outputFolderPath(ws, "out/profiles"), path.join(ws, "out", "profiles"));
  assert.throws(() => outputFolderPath(ws, "../outside"), /inside the workspace/);
  assert.throws(() => outputFolderPath(ws, "/tmp"), /inside the workspace/);
  assert.throws(() => outputFolderPath(ws, "."), /inside the workspace/);
  for (const bad of ["", " x", "/abs", "C:\\x", "a/../../b", "..", "a\\..\\b"]) assert.equal(isRelativeFolder(bad), false, JSON.stringify(bad));
  for (const good of [".lora-drop", "a/b", "profiles"]) assert.equal(isRelativeFolder(good), true, good);
  // The settings reader refuses an escaping output folder and falls back to the default.
  const { settings, problems } = readSettings((k) => (k === "outputFolder" ? "../../home" : undefined));
  assert.equal(settings.outputFolder, ".lora-drop");
  assert.equal(problems.length, 1);
});

test("export targets: a crafted file name cannot leave the proposed folder", () => {
  const folder = path.join(ws, ".lora-drop");
  assert.equal(exportTarget(folder, "heatmap.csv", "csv"), path.join(folder, "heatmap.csv"));
  for (const name of ["../x.csv", "..\\x.csv", "/etc/x.csv", "a/b.csv", ".hidden.csv", "x.csv.exe", "C:x.csv", "evil\u202Evsc.csv", "x.png"]) {
    assert.equal(exportTarget(folder, name, "csv"), undefined, JSON.stringify(name));
  }
});

test("export bytes: PNG data URLs are decoded and must be PNGs; text is UTF-8", () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
  assert.deepEqual(exportBytes("png", `data:image/png;base64,${png.toString("base64")}`), png);
  assert.throws(() => exportBytes("png", `data:image/png;base64,${Buffer.from("GIF89a-not-a-png").toString("base64")}`), /PNG signature/);
  assert.throws(() => exportBytes("png", "data:text/html;base64,PGI+"), /PNG data URL/);
  assert.equal(exportBytes("csv", "a,b\n1,é\n").toString("utf8"), "a,b\n1,é\n");
});

test("a path chosen in the save dialog must be inside a workspace folder", () => {
  assert.equal(checkInsideWorkspace(path.join(ws, "x.csv"), [ws]), undefined);
  assert.match(checkInsideWorkspace("/tmp/x.csv", [ws])!, /outside the workspace/);
  assert.match(checkInsideWorkspace(path.join(ws, "x.csv"), [])!, /Open a folder/);
});
