/**
 * The end of a torch training, killed with SIGKILL. The engine's last write is the trained tensors, into the run's
 * private work folder (Python writes a temporary file and renames it); the adapter itself is written by the Node
 * side (writeAdapter: a hidden temporary folder renamed into place). So two kills are tried, through the CLI:
 *  - the Python child, the instant its tensors file (or its temporary) appears: the CLI reports the engine killed,
 *    exits 2, writes no adapter and removes its work folder;
 *  - the whole CLI, the instant its temporary adapter folder, the files in it, or the adapter appear: the adapter
 *    is complete (equal to an uninterrupted run's) or absent, and a later run cleans the temporary folder up.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { makeTorchFixtures, taggedProcesses, TAG_VAR, torchEnvOrSkip } from "../../torchEnv";
import { BIN, tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const fx = env ? makeTorchFixtures(env, ["llama"]).llama : undefined;

/** The CLI's environment: the engine's interpreter, a temporary folder of the test's own (to watch the work folder), a tag. */
function cliEnv(tmp: string, tag: string): NodeJS.ProcessEnv {
  return { ...process.env, ...env?.env, LORA_DROP_PYTHON: env?.python, TMPDIR: tmp, ORT_DISABLE_TELEMETRY: "1", [TAG_VAR]: tag };
}

/** A training large enough that its files take a moment to write: rank 64 on every module, all layers. */
function trainArgs(out: string): string[] {
  return ["train", "--engine", "torch", "--model", fx!.modelDir, "--data", fx!.dataFile, "--r", "64", "--targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "--steps", "2", "--batch-size", "4", "--device", "cpu", "--threads", "1", "--seed", "5", "--out", out, "--quiet"];
}

/**
 * Resolves true once a name matching `matches` appears in `parent` (or, for "temporary", in the hidden temporary
 * folder that appears there), false once the CLI has ended. Event-driven (inotify through fs.watch).
 */
function appears(parent: string, where: "parent" | "temporary", matches: (name: string) => boolean, cli: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const watchers: fs.FSWatcher[] = [];
    const done = (hit: boolean) => {
      for (const w of watchers) w.close();
      resolve(hit);
    };
    watchers.push(fs.watch(parent, (_e, name) => {
      const n = String(name ?? "");
      if (where === "parent" && matches(n) && fs.existsSync(path.join(parent, n))) return done(true);
      if (where === "temporary" && n.includes(".tmp-")) {
        try {
          const dir = path.join(parent, n);
          watchers.push(fs.watch(dir, (_f, inner) => { if (matches(String(inner ?? ""))) done(true); }));
          // A file written before the watch began.
          if (fs.readdirSync(dir).some(matches)) done(true);
        } catch { /* renamed into place already */ }
      }
    }));
    cli.once("close", () => done(false));
  });
}

function ended(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once("close", (code) => resolve(code))));
}

/** Every LoRA tensor of an adapter folder, by module (undefined when it does not load). */
function tensors(dir: string): Record<string, number[]> | undefined {
  try {
    const a = loadAdapter(dir, loadHfModel(fx!.modelDir).config);
    return Object.fromEntries(a.loras.flatMap((l) => [[`${l.layer}.${l.module}.A`, Array.from(l.A)], [`${l.layer}.${l.module}.B`, Array.from(l.B)]]));
  } catch {
    return undefined;
  }
}

const ls = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

/**
 * Resolves once a file whose name matches `file` appears in the CLI's work folder (a `lora-drop-torch-*` folder
 * under `tmp`), or with false once the CLI has ended. Event-driven (inotify through fs.watch), so the test reacts
 * within milliseconds without taking the CPU from the processes it watches.
 */
function workFileAppears(tmp: string, file: RegExp, cli: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const watchers: fs.FSWatcher[] = [];
    const done = (hit: boolean) => {
      for (const w of watchers) w.close();
      resolve(hit);
    };
    const watchWork = (dir: string) => {
      try {
        watchers.push(fs.watch(dir, (_e, name) => { if (name && file.test(String(name))) done(true); }));
      } catch { /* the folder is gone already: the run ended */ }
    };
    watchers.push(fs.watch(tmp, (_e, name) => { if (name && String(name).startsWith("lora-drop-torch-")) watchWork(path.join(tmp, String(name))); }));
    cli.once("close", () => done(false));
  });
}

test("SIGKILL of the Python child at its final write: no adapter, exit 2 naming the kill, no work folder left", { skip }, async (t) => {
  const root = tmpDir();
  const tmp = path.join(root, "tmp");
  fs.mkdirSync(tmp);
  let landed = 0;
  // The tensors file lives for a moment only (written, read by the Node side, removed with its folder): a kill can
  // come too late, when the engine has answered; then the run is whole. A few tries make sure some land.
  for (let i = 0; i < 4 && landed < 2; i++) {
    const tag = `fw-py-${process.pid}-${i}`;
    const out = path.join(root, `out-${i}`);
    const cli = spawn(process.execPath, [BIN, ...trainArgs(out)], { env: cliEnv(tmp, tag), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    cli.stderr!.on("data", (c) => (stderr += c));
    const hit = await workFileAppears(tmp, /^tensors\.safetensors/, cli);
    if (hit) for (const pid of taggedProcesses(tag).filter((p) => p !== cli.pid)) process.kill(pid, "SIGKILL");
    const code = await ended(cli);
    t.diagnostic(`try ${i + 1}: ${hit ? "killed at the tensors file" : "the file was not seen"}; exit ${code}`);
    if (code === 0) {
      assert.ok(tensors(out), "a run the kill came too late for wrote a whole adapter");
      continue;
    }
    landed++;
    assert.equal(code, 2, stderr);
    assert.match(stderr, /error \[ENGINE_FAILED\]: the torch engine \(python\) was killed by SIGKILL before answering/);
    assert.equal(fs.existsSync(out), false, "no adapter");
    assert.deepEqual(ls(root).filter((f) => f.startsWith(".")), [], "no temporary adapter folder");
    assert.deepEqual(ls(tmp), [], "the work folder is removed");
  }
  assert.ok(landed >= 1, "at least one kill landed at the final write");
});

test("SIGKILL of the CLI while it writes the adapter: the complete adapter or nothing; the next run cleans up", { skip }, async (t) => {
  const root = tmpDir();
  const tmp = path.join(root, "tmp");
  fs.mkdirSync(tmp);
  const reference = path.join(root, "reference");
  const whole = spawnSync(process.execPath, [BIN, ...trainArgs(reference)], { env: cliEnv(tmp, `fw-ref-${process.pid}`), encoding: "utf8" });
  assert.equal(whole.status, 0, whole.stderr);
  const want = tensors(reference)!;
  const parent = path.join(root, "kills");
  fs.mkdirSync(parent);
  const temps = () => ls(parent).filter((e) => e.includes(".tmp-"));
  // Each trigger: a name appearing in the output's parent folder, or in the temporary folder beside it.
  const triggers: [string, "parent" | "temporary", (name: string) => boolean][] = [
    ["temporary folder created", "parent", (n) => n.includes(".tmp-")],
    ["adapter_config.json written in it", "temporary", (n) => n === "adapter_config.json"],
    ["adapter_model.safetensors being written", "temporary", (n) => n.startsWith("adapter_model.safetensors")],
    ["adapter in place", "parent", (n) => n === "out"],
  ];
  const outcomes: Record<string, number> = {};
  let midWrite = 0;
  for (const [name, where, matches] of triggers) {
    const out = path.join(parent, "out");
    fs.rmSync(out, { recursive: true, force: true });
    const cli = spawn(process.execPath, [BIN, ...trainArgs(out)], { env: cliEnv(tmp, `fw-cli-${process.pid}`), stdio: "ignore" });
    const hit = await appears(parent, where, matches, cli);
    const during = temps().length > 0;
    cli.kill("SIGKILL");
    await ended(cli);
    if (during && cli.signalCode === "SIGKILL") midWrite++;
    const got = fs.existsSync(out) ? tensors(out) : undefined;
    const state = !fs.existsSync(out) ? "nothing" : got && JSON.stringify(got) === JSON.stringify(want) ? "complete" : "partial";
    outcomes[state] = (outcomes[state] ?? 0) + 1;
    t.diagnostic(`kill at ${name}${hit ? "" : " (not reached)"}: ${state}`);
    assert.notEqual(state, "partial", `kill at ${name}: the adapter folder is incomplete or altered`);
  }
  t.diagnostic(`${JSON.stringify(outcomes)}; ${midWrite} kills while the temporary folder existed`);
  assert.ok(midWrite >= 1, "at least one kill landed while the adapter was being written");
  // A later run into the same folder removes what the killed writers left (their process is gone).
  fs.rmSync(path.join(parent, "out"), { recursive: true, force: true });
  const again = spawnSync(process.execPath, [BIN, ...trainArgs(path.join(parent, "out"))], { env: cliEnv(tmp, `fw-again-${process.pid}`), encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(temps(), [], "no temporary folder left after the next run");
  assert.deepEqual(tensors(path.join(parent, "out")), want);
});
