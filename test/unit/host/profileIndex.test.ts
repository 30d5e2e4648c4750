/**
 * Finding saved profiles by reading only their heads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { latestProfileOf, parseProfileHead, readProfileHead } from "../../../extension/host/profileIndex";
import { tmpDir } from "../../helpers";

test("profile heads: the adapter path is read from the head of a compact profile", () => {
  const head = `{"schema":"lora-drop.profile","version":1,"created":"x","criterion":"output","device":"cpu","model":{"path":"/m"},"adapter":{"path":"/w/a \\"q\\"","r":8`;
  assert.deepEqual(parseProfileHead(head, "f", 5), { file: "f", adapterPath: '/w/a "q"', mtimeMs: 5 });
  assert.equal(parseProfileHead(head.replace("lora-drop.profile", "other"), "f", 5), undefined);
  const heads = [
    { file: "old", adapterPath: "/w/a", mtimeMs: 1 },
    { file: "new", adapterPath: "/w/a/", mtimeMs: 3 },
    { file: "other", adapterPath: "/w/b", mtimeMs: 9 },
  ];
  assert.equal(latestProfileOf(heads, "/w/a")?.file, "new");
  assert.equal(latestProfileOf(heads, "/w/c"), undefined);
  const dir = tmpDir();
  const file = path.join(dir, "p.json");
  fs.writeFileSync(file, head + "}}");
  assert.equal(readProfileHead(file)?.adapterPath, '/w/a "q"');
  assert.equal(readProfileHead(path.join(dir, "missing.json")), undefined);
});
