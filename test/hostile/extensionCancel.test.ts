/**
 * Cancel from the extension while a job writes: real prune and train jobs through jobRunner (the extension's own
 * entry, a worker process per job) are cancelled at several moments — at once, after the first progress event or
 * training step, the instant the output's temporary folder or its weights file appears — and by a worker that
 * ignores cancel and is killed when the grace period ends. Each time: the promise rejects with CancelledError (or,
 * for a cancel that came after the job finished, resolves), the output is absent or complete and equal to an
 * uncancelled run's (reloaded with loadAdapter), a temporary left by a killed worker is cleaned by the next run,
 * and the model, adapter, dataset and profile are unchanged.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runJob, defaultWorkerPath } from "../../extension/host/jobRunner";
import type { PruneJob, TrainJob, Job } from "../../extension/worker/jobProtocol";
import { isLoraDropError } from "../../extension/core/util/errors";
import { loadAdapter, Adapter } from "../../extension/core/adapter/peftAdapter";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { profileAdapter } from "../../extension/core/importance/profile";
import { writeProfile } from "../../extension/core/importance/profileFile";
import { makeFixture, treeHashes } from "../helpers";

const ENV = { ORT_DISABLE_TELEMETRY: "1" };


/** Yields to the event loop (IPC from the worker keeps flowing) until `cond` holds or `ms` pass. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setImmediate(r));
  }
  return cond();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Hidden temporaries atomicWrite leaves beside `out` (`.out.tmp-<pid>-<time>[-old]`). */
function temps(parent: string): string[] {
  return fs.readdirSync(parent).filter((e) => e.includes(".tmp-"));
}

/** Every LoRA factor of an adapter, by layer and module. */
function factors(a: Adapter): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const l of a.loras) {
    out[`${l.layer}.${l.module}.A`] = [...l.A];
    out[`${l.layer}.${l.module}.B`] = [...l.B];
  }
  return out;
}

/** When to cancel, and whether the worker ignores the cancel (and is killed after `killAfterMs`). */
interface Moment {
  name: string;
  when: "immediately" | "progress" | "step" | "temp folder" | "weights file";
  stubborn?: boolean;
  killAfterMs?: number;
}

test("cancel from the extension while prune or train writes: CancelledError, the output absent or complete, temporaries cleaned, inputs unchanged", async (t) => {
  const fx = makeFixture({ numLayers: 8, tokenizer: false, hiddenSize: 128, numHeads: 4, numKvHeads: 2, intermediateSize: 256, vocabSize: 128 },
    { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], r: 16 }, { count: 1 });
  const data = path.join(fx.root, "ids.jsonl");
  const rows = Array.from({ length: 16 }, (_, i) => ({ input_ids: Array.from({ length: 6 + (i % 5) }, (_, k) => (1 + 7 * i + 13 * k) % 128) }));
  fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const profile = path.join(fx.root, "profile.json");
  writeProfile(profile, await profileAdapter({ modelDir: fx.modelDir, adapterDir: fx.adapterDir, dataPath: data, maxExamples: 4, maxTokens: 8, device: "cpu", threads: 1 }));
  const modelConfig = loadHfModel(fx.modelDir).config;
  const inputs = [fx.modelDir, fx.adapterDir, data, profile];
  const before = inputs.map((p) => treeHashes(p));
  // A worker that drops `cancel` messages, as one stuck in native code would: only the grace-period kill stops it.
  const stubborn = path.join(fx.root, "stubbornWorker.js");
  fs.writeFileSync(stubborn, `const on = process.on.bind(process);
process.on = (ev, fn) => on(ev, ev === "message" ? (m) => { if (!(m && m.type === "cancel")) fn(m); } : fn);
require(${JSON.stringify(defaultWorkerPath())});
`);

  const jobs: Record<"prune" | "train", (outDir: string, force?: boolean) => Job> = {
    prune: (outDir, force = false): PruneJob => ({ kind: "prune", adapterDir: fx.adapterDir, profilePath: profile, threshold: 0.9, mode: "share", format: "peft", outDir, force }),
    train: (outDir, force = false): TrainJob => ({ kind: "train", modelDir: fx.modelDir, dataPath: data, outDir, r: 4, loraAlpha: 8, targets: ["q_proj", "v_proj"],
      epochs: 6, lr: 1e-2, batchSize: 2, device: "cpu", maxTokens: 16, force }),
  };
  // Uncancelled runs: what a complete output must equal.
  const reference: Record<string, Record<string, number[]>> = {};
  for (const kind of ["prune", "train"] as const) {
    const out = path.join(fx.root, `ref-${kind}`);
    await runJob(jobs[kind](out), { env: ENV });
    reference[kind] = factors(loadAdapter(out, modelConfig));
  }

  // Prune reports no progress events; its first log line (the selection) is the earliest sign that it runs.
  const moments: Moment[] = [
    { name: "at once", when: "immediately" },
    { name: "after the first progress event or log line", when: "progress" },
    { name: "the instant the temporary folder appears", when: "temp folder" },
    { name: "the instant the weights file is being written", when: "weights file" },
    { name: "worker ignores cancel, killed 1 ms later, at the temporary folder", when: "temp folder", stubborn: true, killAfterMs: 1 },
    { name: "worker ignores cancel, killed 1 ms later, at the weights file", when: "weights file", stubborn: true, killAfterMs: 1 },
    { name: "worker ignores cancel, killed 200 ms later", when: "progress", stubborn: true, killAfterMs: 200 },
  ];
  const trainMoments: Moment[] = [...moments, { name: "after the third training step", when: "step" }, { name: "worker ignores cancel, killed 100 ms after a step", when: "step", stubborn: true, killAfterMs: 100 }];
  const tally: Record<string, number> = {};
  let caseNo = 0;
  for (const kind of ["prune", "train"] as const) {
    for (const m of kind === "train" ? trainMoments : moments) {
      await t.test(`${kind}: cancel ${m.name}`, async () => {
        const parent = path.join(fx.root, `case-${++caseNo}`);
        fs.mkdirSync(parent);
        const out = path.join(parent, "out");
        const controller = new AbortController();
        let progress = 0;
        let steps = 0;
        let settled = false;
        const run = runJob(jobs[kind](out), {
          signal: controller.signal, env: ENV, killAfterMs: m.killAfterMs ?? 10_000, workerPath: m.stubborn ? stubborn : undefined,
          progress: () => { progress++; }, trainStep: () => { steps++; },
          log: { info: () => { progress++; }, warn: () => {} },
        });
        const outcome = run.then((r) => ({ result: r }), (e: unknown) => ({ error: e }));
        void outcome.then(() => { settled = true; });
        const inTemp = (f: string) => temps(parent).some((e) => fs.existsSync(path.join(parent, e, f)));
        const cond: Record<Moment["when"], () => boolean> = {
          immediately: () => true,
          progress: () => progress > 0,
          step: () => steps >= 3,
          "temp folder": () => temps(parent).length > 0,
          "weights file": () => inTemp("adapter_model.safetensors"),
        };
        const reached = await until(() => settled || cond[m.when](), 60_000);
        const midWrite = temps(parent).length > 0;
        controller.abort();
        const o = await outcome;
        const state = "error" in o ? "cancelled" : "finished first";
        if ("error" in o) assert.ok(isLoraDropError(o.error) && o.error.code === "CANCELLED", `rejects with CancelledError, got ${String(o.error)}`);
        // The cancel is sent right behind the start message, so the job sees it at its first check: nothing is written.
        if (m.when === "immediately") assert.equal(state, "cancelled", "a cancel sent with the start stops the job");
        else if (!("error" in o)) assert.equal((o.result as { outDir: string }).outDir, out, "a job that finished before the cancel reached it reports its output");
        // A killed worker may still be going down: wait until every process that owns a temporary has gone.
        const owners = () => temps(parent).map((e) => Number(/\.tmp-(\d+)-/.exec(e)![1]));
        assert.ok(await until(() => owners().every((pid) => !alive(pid)), 10_000), "the worker process ended");
        const left = temps(parent);
        const complete = fs.existsSync(out);
        if (!("error" in o)) assert.ok(complete, "a job reported finished has its output in place");
        if (m.when === "immediately") assert.equal(complete, false);
        if (complete) assert.deepEqual(factors(loadAdapter(out, modelConfig)), reference[kind], "the output in place is the complete, uncancelled result");
        if (!m.stubborn) assert.deepEqual(left, [], "a worker that honoured cancel leaves no temporary");
        if (left.length > 0 || !complete) {
          // The next run over the same output cleans what the killed worker left, and completes.
          await runJob(jobs[kind](out, true), { env: ENV });
          assert.deepEqual(temps(parent), [], "the next run removed the temporaries");
          assert.deepEqual(factors(loadAdapter(out, modelConfig)), reference[kind]);
        }
        const key = `${state}, output ${complete ? "complete" : "absent"}${left.length ? `, ${left.length} temporary left then cleaned` : ""}${midWrite ? " (cancelled mid-write)" : ""}${reached ? "" : " (moment not reached)"}`;
        tally[key] = (tally[key] ?? 0) + 1;
        if (process.env.CANCEL_DEBUG) console.error(`${kind} ${m.name}: ${key}; progress ${progress}, steps ${steps}`);
      });
    }
  }
  t.diagnostic(`outcomes: ${Object.entries(tally).map(([k, v]) => `${v}× ${k}`).join("; ")}`);
  assert.deepEqual(inputs.map((p) => treeHashes(p)), before, "the model, adapter, dataset and profile are unchanged");
  assert.ok(Object.keys(tally).some((k) => k.startsWith("cancelled")), "at least one cancel landed while the job ran");
});
