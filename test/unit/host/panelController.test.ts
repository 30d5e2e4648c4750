/**
 * The panel's host side without VS Code: the ready handshake and replay, the kept layers the test API reports
 * (checked against a hand computation), what crafted webview messages can and cannot make the host do, and the
 * sweeps: reopened beside the profile (stale ones skipped), "Evaluate thresholds" with progress, cancel and refusal.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PanelController, type PanelHost, type PanelPrunePlan } from "../../../extension/host/panelController";
import { PROFILE_SCHEMA, PROFILE_VERSION, type ProfileFile } from "../../../extension/core/importance/profileSchema";
import { parseHostMessage, type HostToWebview } from "../../../extension/viewModel/protocol";
import { selectAmong } from "../../../extension/core/importance/selection";
import { selectFromProfile } from "../../../extension/core/prune/dropShare";
import { selectForProfile, keptPositions } from "../../../extension/viewModel/layerSelection";
import { tmpDir } from "../../helpers";
import type { PanelSweepPlan, SweepHooks } from "../../../extension/host/panelSweeps";
import { readSweep, sweepPathFor } from "../../../extension/core/sweep/sweepFile";
import { CancelledError } from "../../../extension/core/util/errors";
import { makeSweep } from "../viewModel/fixtures";

/** Four layers with importance 0.5, 0.1, 0.3, 0.1; 96 LoRA parameters per module and layer, none for v_proj at layer 3. */
function profile(adapterPath: string): ProfileFile {
  const per = [0.5, 0.1, 0.3, 0.1];
  return {
    schema: PROFILE_SCHEMA, version: PROFILE_VERSION, created: "2025-01-01T00:00:00Z", criterion: "output", device: "cpu",
    model: { path: "/m", architecture: "llama", num_layers: 4, hidden_size: 8, vocab_size: 16 },
    adapter: { path: adapterPath, r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj"], params: { q_proj: [96, 96, 96, 96], v_proj: [96, 96, 96, 0] }, total_params: 672 },
    settings: { data: "/d.jsonl", max_examples: 1, max_tokens: 4 },
    layers: [0, 1, 2, 3], modules: ["q_proj", "v_proj"],
    sequences: [{ ids: [1, 2], tokens: ["<s>", "<img src=x onerror=alert(1)>"], special: [true, false], example: 0 }],
    importance: { per_layer_raw: per, per_layer: per, per_module_raw: { q_proj: per, v_proj: per }, per_module: { q_proj: per, v_proj: per } },
    timing: { seconds: 1, tokens: 2, tokens_per_second: 2 },
  };
}

interface Harness {
  controller: PanelController;
  swept: PanelSweepPlan[];
  /** What the fake sweep run does: by default writes makeSweep's sweep to the plan's file. */
  evaluate?: (plan: PanelSweepPlan, hooks: SweepHooks) => Promise<string>;
  posted: HostToWebview[];
  pruned: PanelPrunePlan[];
  errors: string[];
  saveDialogs: (string | undefined)[];
  dialogCalls: number;
  root: string;
}

function harness(opts: { compareFile?: string } = {}): Harness {
  const root = tmpDir();
  const h: Harness = { controller: undefined as unknown as PanelController, swept: [], posted: [], pruned: [], errors: [], saveDialogs: [], dialogCalls: 0, root };
  const host: PanelHost = {
    post: (m) => h.posted.push(m),
    roots: () => [root],
    exportFolder: () => path.join(root, ".lora-drop"),
    prune: async (plan) => {
      h.pruned.push(plan);
      return { outDir: plan.outDir, threshold: plan.threshold, mode: plan.mode, keptLayers: [0, 2], sharedLayers: [1, 3], paramsBefore: 672, paramsAfter: 576 };
    },
    evaluate: async (plan, hooks) => {
      h.swept.push(plan);
      if (h.evaluate) return h.evaluate(plan, hooks);
      hooks.progress(0.5, "configuration 3/6");
      fs.writeFileSync(plan.outFile, JSON.stringify(makeSweep(plan.profile, { mode: plan.mode })));
      return plan.outFile;
    },
    loadSweep: (file) => readSweep(file),
    saveDialog: async () => {
      h.dialogCalls++;
      return h.saveDialogs.shift();
    },
    pickProfile: async () => opts.compareFile,
    loadProfile: () => profile(path.join(root, "other-adapter")),
    reportError: (what, e) => h.errors.push(`${what}: ${(e as Error).message}`),
    log: { info: () => undefined, warn: () => undefined },
    changed: () => undefined,
  };
  h.controller = new PanelController(host, { threshold: 0.9, mode: "share" });
  return h;
}

test("nothing is posted before `ready`; every `ready` replays the profiles and the loss curve", async () => {
  const h = harness();
  h.controller.showProfile("/p.json", profile("/a"), "primary");
  h.controller.trainStep({ step: 1, totalSteps: 2, loss: 3, lr: 1e-3, tokensPerSecond: 10 });
  assert.equal(h.posted.length, 0);
  await h.controller.handleMessage({ type: "ready" });
  assert.deepEqual(h.posted.map((m) => m.type), ["settings", "profile", "trainProgress"]);
  h.controller.webviewReset();
  h.controller.trainStep({ step: 2, totalSteps: 2, loss: 2, lr: 1e-3, tokensPerSecond: 10 });
  assert.equal(h.posted.length, 3, "a hidden panel's page is gone: nothing is sent to it");
  await h.controller.handleMessage({ type: "ready" });
  assert.deepEqual(h.posted.slice(3).map((m) => m.type), ["settings", "profile", "trainProgress", "trainProgress"]);
  assert.equal(h.controller.report().readyCount, 2);
  // A step not after the last one starts a new curve.
  h.controller.trainStep({ step: 1, totalSteps: 5, loss: 9, lr: 1e-3, tokensPerSecond: 10 });
  assert.equal(h.controller.report().trainSteps, 1);
});

test("the reported kept layers and parameter counts follow the panel's threshold and mode (hand computation)", async () => {
  const h = harness();
  h.controller.showProfile("/p.json", profile("/a"), "primary");
  // T = 0.75: layer 0 (0.5) then layer 2 (0.3) reach 0.8 ≥ 0.75.
  await h.controller.handleMessage({ type: "stateChanged", threshold: 0.75, mode: "share" });
  let r = h.controller.report();
  assert.deepEqual(r.keptLayers, [0, 2]);
  // Before: 4·96 + 3·96 = 672. Share: kept 2·96 per module, plus one shared LoRA of 96 per module = 576.
  assert.deepEqual([r.paramsBefore, r.paramsAfter], [672, 576]);
  await h.controller.handleMessage({ type: "stateChanged", threshold: 0.75, mode: "drop" });
  assert.equal(h.controller.report().paramsAfter, 384);
  await h.controller.handleMessage({ type: "stateChanged", threshold: 0.5, mode: "share" });
  r = h.controller.report();
  assert.deepEqual(r.keptLayers, [0]);
  assert.equal(r.paramsAfter, 96 + 96 + 96 + 96);
});

test("invalid messages are counted and ignored", async () => {
  const h = harness();
  await h.controller.handleMessage({ type: "ready" });
  for (const m of [null, "ready", { type: "applyPrune", requestId: 1, threshold: 2, mode: "share" }, { type: "export", requestId: 1, format: "csv", fileName: "../../evil.csv", content: "x" }, { type: "rm -rf" }]) {
    await h.controller.handleMessage(m);
  }
  const r = h.controller.report();
  assert.equal(r.invalidMessages, 5);
  assert.equal(r.messagesReceived, 6);
  assert.equal(h.dialogCalls, 0);
  assert.deepEqual(h.pruned, []);
});

test("Apply drop-and-share prunes next to the profile's adapter, inside the workspace", async () => {
  const h = harness();
  const adapter = path.join(h.root, "models", "my-adapter");
  h.controller.showProfile(path.join(h.root, "p.json"), profile(adapter), "primary");
  await h.controller.handleMessage({ type: "ready" });
  await h.controller.handleMessage({ type: "applyPrune", requestId: 7, threshold: 0.75, mode: "share" });
  assert.equal(h.pruned.length, 1);
  assert.equal(h.pruned[0]!.outDir, path.join(h.root, "models", "my-adapter-lora-drop-T0.75"));
  assert.equal(h.pruned[0]!.adapterDir, adapter);
  const result = h.posted.find((m) => m.type === "pruneResult");
  assert.deepEqual(result && { id: result.requestId, out: result.outputPath }, { id: 7, out: h.pruned[0]!.outDir });
});

test("a profile naming an adapter outside the workspace cannot make the panel write there", async () => {
  const h = harness();
  h.controller.showProfile(path.join(h.root, "crafted.json"), profile("/etc/some-adapter"), "primary");
  await h.controller.handleMessage({ type: "ready" });
  await h.controller.handleMessage({ type: "applyPrune", requestId: 3, threshold: 0.9, mode: "share" });
  assert.deepEqual(h.pruned, [], "no prune was started");
  const err = h.posted.find((m) => m.type === "error");
  assert.equal(err?.type === "error" && err.requestId, 3);
  assert.equal(h.errors.length, 1, "one notification");
  assert.match(h.errors[0]!, /outside the workspace/);
});

test("exports: written where the user chose inside the workspace; outside or cancelled writes nothing", async () => {
  const h = harness();
  h.controller.showProfile("/p.json", profile("/a"), "primary");
  await h.controller.handleMessage({ type: "ready" });
  const inside = path.join(h.root, "heatmap.csv");
  const outside = path.join(tmpDir(), "heatmap.csv");
  h.saveDialogs.push(inside, outside, undefined);
  const csv = "layer,token,value\n0,<s>,1.5\n";
  await h.controller.handleMessage({ type: "export", requestId: 1, format: "csv", fileName: "heatmap.csv", content: csv });
  assert.equal(fs.readFileSync(inside, "utf8"), csv);
  await h.controller.handleMessage({ type: "export", requestId: 2, format: "csv", fileName: "heatmap.csv", content: csv });
  assert.equal(fs.existsSync(outside), false);
  assert.equal(h.errors.length, 1);
  await h.controller.handleMessage({ type: "export", requestId: 3, format: "csv", fileName: "heatmap.csv", content: csv });
  const done = h.posted.filter((m) => m.type === "exportDone");
  assert.deepEqual(done, [{ type: "exportDone", requestId: 1, savedPath: inside }, { type: "exportDone", requestId: 3 }]);
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  const pngFile = path.join(h.root, "heatmap.png");
  h.saveDialogs.push(pngFile);
  await h.controller.handleMessage({ type: "export", requestId: 4, format: "png", fileName: "heatmap.png", content: `data:image/png;base64,${png.toString("base64")}` });
  assert.deepEqual(fs.readFileSync(pngFile), png, "the data URL is decoded to the PNG's bytes");
});

test("a second profile goes to the compare slot; a new primary clears it", async () => {
  const h = harness({ compareFile: "/other.json" });
  h.controller.showProfile("/p.json", profile("/a"), "primary");
  await h.controller.handleMessage({ type: "ready" });
  await h.controller.handleMessage({ type: "pickCompareProfile" });
  const cmp = h.posted.find((m) => m.type === "profile" && m.slot === "compare");
  assert.equal(cmp?.type === "profile" && cmp.sourcePath, "/other.json");
  assert.equal(h.controller.report().comparePath, "/other.json");
  h.controller.showProfile("/p2.json", profile("/a"), "primary");
  assert.ok(h.posted.some((m) => m.type === "clearCompare"));
  assert.equal(h.controller.report().comparePath, undefined);
});

test("settings go to the page first after every ready, and again on change; a page's own choice then wins", async () => {
  const h = harness();
  h.controller.settingsChanged({ threshold: 0.6, mode: "drop" });
  assert.equal(h.posted.length, 0, "nothing before ready");
  assert.deepEqual([h.controller.report().threshold, h.controller.report().mode], [0.6, "drop"]);
  h.controller.showProfile("/p.json", profile("/a"), "primary");
  await h.controller.handleMessage({ type: "ready" });
  assert.deepEqual(h.posted[0], { type: "settings", threshold: 0.6, mode: "drop" }, "the latest settings, before the profile");
  assert.equal(h.posted[1]?.type, "profile");
  for (const m of h.posted) assert.deepEqual(parseHostMessage(JSON.parse(JSON.stringify(m))), m, `${m.type} passes the webview's validator`);
  h.controller.settingsChanged({ threshold: 0.6, mode: "drop" });
  assert.equal(h.posted.length, 2, "unchanged settings are not sent again");
  // The page reports the user's own threshold; a later settings change is still sent (the page decides), but the
  // host keeps reporting the page's choice.
  await h.controller.handleMessage({ type: "stateChanged", threshold: 0.5, mode: "share" });
  h.controller.settingsChanged({ threshold: 0.8, mode: "share" });
  assert.deepEqual(h.posted[2], { type: "settings", threshold: 0.8, mode: "share" });
  assert.equal(h.controller.report().threshold, 0.5);
});

/** The fixture profile with every importance zero (layer 3 has no LoRA at all when `noLoraAt3`). */
function allZero(noLoraAt3: boolean): ProfileFile {
  const p = profile("/a");
  const zeros = [0, 0, 0, 0];
  p.importance = { per_layer_raw: zeros, per_layer: zeros, per_module_raw: { q_proj: zeros, v_proj: zeros }, per_module: { q_proj: zeros, v_proj: zeros } };
  if (noLoraAt3) p.adapter.params = { q_proj: [96, 96, 96, 0], v_proj: [96, 96, 96, 0] };
  return p;
}

test("all-zero importance: the panel, the host and the engine's prune selection keep the same layers (all LoRA layers)", async () => {
  for (const noLoraAt3 of [false, true]) {
    const p = allZero(noLoraAt3);
    const loraLayers = noLoraAt3 ? [0, 1, 2] : [0, 1, 2, 3];
    // What `prune` does: the engine's selection over the layers whose adapter carries a LoRA (the pairs are the
    // ones the profile's parameter table lists: 96 = r·(in + out) = 4·(8 + 16)).
    const modules = ["q_proj", "v_proj"];
    const adapter = {
      dir: "/a",
      modules,
      loras: [0, 1, 2, 3].flatMap((layer) => modules.filter((m) => (p.adapter.params[m]?.[layer] ?? 0) > 0).map((module) => ({ layer, module, r: 4, inFeatures: 8, outFeatures: 16 }))),
    } as unknown as Parameters<typeof selectFromProfile>[1];
    for (const t of [0.01, 0.5, 0.9, 1]) {
      const engine = selectFromProfile(p, adapter, { threshold: t });
      assert.deepEqual(engine.kept, loraLayers, `engine keeps every LoRA layer at T = ${t}: no importance to prune on`);
      assert.deepEqual(engine.shared, []);
      assert.deepEqual(keptPositions(selectForProfile(p, t).kept), loraLayers, `panel at T = ${t}`);
      assert.deepEqual(selectAmong(p.importance.per_layer, loraLayers, { threshold: t }).kept, loraLayers);
      const h = harness();
      h.controller.showProfile("/p.json", p, "primary");
      await h.controller.handleMessage({ type: "stateChanged", threshold: t, mode: "share" });
      assert.deepEqual(h.controller.report().keptLayers, loraLayers, `host report at T = ${t}`);
    }
  }
});

test("sweeps beside the profile reopen with it (a sweep of another profile run is skipped) and replay after `ready`", async () => {
  const h = harness();
  const file = path.join(h.root, "p.profile.json");
  const p = profile(path.join(h.root, "a"));
  fs.writeFileSync(sweepPathFor(file, "share"), JSON.stringify(makeSweep(p)));
  fs.writeFileSync(sweepPathFor(file, "drop"), JSON.stringify(makeSweep({ ...p, created: "2024-12-31T00:00:00Z" }, { mode: "drop" })));
  h.controller.showProfile(file, p, "primary");
  assert.deepEqual(h.controller.report().sweeps, ["share"]);
  await h.controller.handleMessage({ type: "ready" });
  const sweeps = h.posted.filter((m) => m.type === "sweep");
  assert.equal(sweeps.length, 1);
  assert.ok(parseHostMessage(sweeps[0]), "the replayed sweep passes the webview's validation");
  // Another primary profile: its sweeps replace these.
  h.controller.showProfile(path.join(h.root, "q.profile.json"), p, "primary");
  assert.equal(h.posted.at(-1)?.type, "clearSweeps");
  assert.deepEqual(h.controller.report().sweeps, []);
});

test("Evaluate thresholds: the sweep is written beside the profile, progress and result reach the panel", async () => {
  const h = harness();
  const file = path.join(h.root, "p.profile.json");
  h.controller.showProfile(file, profile(path.join(h.root, "a")), "primary");
  await h.controller.handleMessage({ type: "ready" });
  await h.controller.handleMessage({ type: "evaluateThresholds", mode: "drop" });
  assert.deepEqual(h.swept.map((x) => [x.outFile, x.mode]), [[sweepPathFor(file, "drop"), "drop"]]);
  const types = h.posted.map((m) => m.type);
  assert.deepEqual(types.slice(types.indexOf("sweepProgress")), ["sweepProgress", "sweep", "sweepDone"]);
  assert.deepEqual(h.posted.at(-1), { type: "sweepDone", mode: "drop", outcome: "completed" });
  assert.deepEqual(h.controller.report().sweeps, ["drop"]);
  assert.equal(h.controller.report().evaluating, false);
  assert.deepEqual(h.errors, []);
});

test("Evaluate thresholds: cancel from the panel stops the run; a profile outside the workspace is refused", async () => {
  const h = harness();
  h.controller.showProfile(path.join(h.root, "p.profile.json"), profile(path.join(h.root, "a")), "primary");
  await h.controller.handleMessage({ type: "ready" });
  h.evaluate = (_plan, hooks) => new Promise((_resolve, reject) => hooks.signal.addEventListener("abort", () => reject(new CancelledError("sweep"))));
  const running = h.controller.handleMessage({ type: "evaluateThresholds", mode: "share" });
  await new Promise((r) => setImmediate(r));
  assert.equal(h.controller.report().evaluating, true);
  await h.controller.handleMessage({ type: "evaluateThresholds", mode: "share" });
  assert.equal(h.swept.length, 1, "a second click while one runs starts nothing");
  await h.controller.handleMessage({ type: "cancelEvaluation" });
  await running;
  assert.deepEqual(h.posted.at(-1), { type: "sweepDone", mode: "share", outcome: "cancelled" });
  assert.equal(h.controller.report().evaluating, false);

  const outside = harness();
  outside.controller.showProfile(path.join(tmpDir(), "p.profile.json"), profile("/a"), "primary");
  await outside.controller.handleMessage({ type: "ready" });
  await outside.controller.handleMessage({ type: "evaluateThresholds", mode: "share" });
  assert.equal(outside.swept.length, 0);
  const done = outside.posted.at(-1) as Extract<HostToWebview, { type: "sweepDone" }>;
  assert.equal(done.outcome, "failed");
  assert.match(done.message ?? "", /outside the workspace/);
  assert.match(outside.errors[0] ?? "", /^Evaluate thresholds: .*outside the workspace/);
});
