/**
 * The test API's state: mirrored to a file, revisions, waiting for running commands.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { TestState } from "../../../extension/host/testApi";
import { tmpDir } from "../../helpers";

test("test state: mirrored to the file, revision increases, whenIdle waits for running commands", async () => {
  const file = path.join(tmpDir(), "state.json");
  const state = new TestState(file);
  const api = state.api();
  state.commandStarted("loraDrop.profile");
  let idle = false;
  const waiting = api.whenIdle().then(() => (idle = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, false);
  state.update((s) => (s.lastProfilePath = "/w/p.json"));
  state.commandFinished("loraDrop.profile", "ok");
  await waiting;
  const onDisk = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.equal(onDisk.lastProfilePath, "/w/p.json");
  assert.deepEqual(onDisk.finished, [{ command: "loraDrop.profile", outcome: "ok" }]);
  assert.equal(onDisk.revision, 3);
  assert.equal(api.lastProfilePath(), "/w/p.json");
});
