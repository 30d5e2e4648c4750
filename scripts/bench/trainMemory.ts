/**
 * Where a training step's memory goes: builds the training graph and session as `trainLora` does (batch 1, the
 * benchmark model), runs a few steps, and prints the process's resident memory after each stage (VmRSS, split into
 * file-backed and anonymous pages, and the high-water mark VmHWM from /proc/self/status).
 *
 * Usage (after `npm run build`): node out/scripts/bench/trainMemory.js --seq 256 [--steps 3] [--threads N]
 *        [--config session.key=value,...] [--no-arena] [--no-mem-pattern] [--opt LEVEL] [--profile PREFIX] [--cache DIR]
 * Run it under `flock /tmp/bench.lock` on a shared machine: it maps the whole benchmark model.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { slotOf } from "../../extension/core/runtime/loraRunner";
import { LossSession, paramsOf } from "../../extension/core/runtime/lossSession";
import { makeBatch } from "../../extension/core/data/batch";
import { Rng } from "../../extension/core/util/random";
import { ort } from "../../extension/core/runtime/session";
import type * as Ort from "onnxruntime-node";
import { ensureBenchModel, TINYLLAMA_SHAPE } from "./benchModel";

const GIB = 1024 ** 3;

/** VmRSS, RssAnon, RssFile and VmHWM of this process, in bytes. */
export function memoryStatus(): { rss: number; anon: number; file: number; hwm: number } {
  const text = fs.readFileSync("/proc/self/status", "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), hwm: kib("VmHWM") };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      seq: { type: "string", default: "256" }, steps: { type: "string", default: "3" }, threads: { type: "string" },
      config: { type: "string" }, "no-arena": { type: "boolean", default: false }, "no-mem-pattern": { type: "boolean", default: false },
      opt: { type: "string" }, profile: { type: "string" }, cache: { type: "string", default: path.join(".cache", "bench") },
    },
  });
  const fx = ensureBenchModel(path.resolve(a.cache), TINYLLAMA_SHAPE, (m) => console.log(m));
  const report = (stage: string) => {
    const m = memoryStatus();
    const g = (b: number) => (b / GIB).toFixed(2).padStart(6);
    console.log(`${stage.padEnd(28)} rss ${g(m.rss)}  anon ${g(m.anon)}  file ${g(m.file)}  hwm ${g(m.hwm)} GiB  (hwm ${(m.hwm / fx.weightBytes).toFixed(2)}× weights)`);
  };
  report("start");
  const model = loadHfModel(fx.modelDir);
  const adapter = loadAdapter(fx.adapterDir, model.config);
  const params = paramsOf(adapter.loras);
  report("model and adapter read");
  const config = Object.fromEntries((a.config ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  // Session options the product does not expose are patched into onnxruntime's create call, for measuring only.
  const rt = ort();
  const create = rt.InferenceSession.create.bind(rt.InferenceSession) as (p: string, o: Ort.InferenceSession.SessionOptions) => Promise<Ort.InferenceSession>;
  const extra: Ort.InferenceSession.SessionOptions = {
    ...(a["no-arena"] ? { enableCpuMemArena: false } : {}), ...(a["no-mem-pattern"] ? { enableMemPattern: false } : {}),
    ...(a.opt ? { graphOptimizationLevel: a.opt as "all" } : {}),
    ...(a.profile ? { enableProfiling: true, profileFilePrefix: a.profile } : {}),
  };
  (rt.InferenceSession as unknown as { create: typeof create }).create = (p, o) => create(p, { ...o, ...extra });
  const t0 = performance.now();
  const session = await LossSession.create(model, adapter.loras.map(slotOf), {
    gradients: true, dropout: false, device: "cpu", threads: a.threads ? Number(a.threads) : undefined, config,
  });
  report(`session created (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const seq = Number(a.seq);
  const rng = new Rng(2000 + seq);
  const ids = Array.from({ length: seq }, () => 3 + rng.int(model.config.vocabSize - 3));
  const batch = makeBatch([{ example: 0, ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true) }]);
  for (let s = 0; s < Number(a.steps); s++) {
    const t = performance.now();
    const r = await session.run(batch, seq - 1, params);
    report(`step ${s + 1} (${((performance.now() - t) / 1000).toFixed(2)} s, loss ${r.loss.toFixed(4)})`);
  }
  await session.dispose();
  report("disposed");
}

void main();
