/**
 * The torch engine's side of `npm run bench -- --engine torch` and `npm run bench:train -- --engine torch`: the
 * engine run as users run it (the Node side, then Python with transformers + PEFT), on the benchmark's model and
 * token ids. Timed between the engine's own reports — one progress line per profiled batch, one step line per
 * optimiser step — so the first (warm-up) batch or step and the model loading are left out, as the onnxruntime
 * side leaves out its session creation.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { torchProfile } from "../../extension/core/importance/torchProfile";
import { torchTrain } from "../../extension/core/train/torchTrain";
import type { TorchDevice, TorchDtype } from "../../extension/core/torch/protocol";

/** How the torch engine runs in the benchmark. */
export interface TorchEngineBench {
  modelDir: string;
  adapterDir: string;
  /** A JSON file holding the token ids of one sequence. */
  idsFile: string;
  reps: number;
  python: string;
  device: TorchDevice;
  dtype: TorchDtype;
  threads?: number;
  env?: NodeJS.ProcessEnv;
}

/** One torch-engine measurement: seconds per timed pass or step, the best, where it ran and its peak memory. */
export interface TorchEngineResult {
  times: number[];
  best: number;
  device: string;
  peakRssBytes: number;
  gpuPeakBytes?: number;
  firstLoss?: number;
  firstGradNorm?: number;
}

/** The output-criterion profile of `reps` + 1 copies of the sequence, one per batch; the first is the warm-up. */
export async function torchEngineProfile(b: TorchEngineBench): Promise<TorchEngineResult> {
  return withData(b, async (data) => {
    const stamps: number[] = [];
    const profile = await torchProfile({
      modelDir: b.modelDir, adapterDir: b.adapterDir, dataPath: data, maxExamples: b.reps + 1, maxTokens: idsOf(b).length, batchSize: 1,
      engine: "torch", device: b.device, dtype: b.dtype, python: b.python, env: b.env, ...(b.threads ? { threads: b.threads } : {}),
    }, { progress: { report: () => void stamps.push(performance.now()) } });
    const times = intervals(stamps);
    return { times, best: Math.min(...times), device: profile.device, peakRssBytes: profile.timing.peak_rss_bytes ?? 0 };
  });
}

/** `reps` + 1 LoRA training steps on the sequence (batch 1, the adapter's values to start, constant rate, no clipping, as the onnx side). */
export async function torchEngineTrain(b: TorchEngineBench): Promise<TorchEngineResult> {
  return withData(b, async (data, dir) => {
    const stamps: number[] = [];
    const events: { loss: number; gradNorm: number }[] = [];
    const r = await torchTrain({
      modelDir: b.modelDir, dataPath: data, outDir: path.join(dir, "out"), initAdapterDir: b.adapterDir, steps: b.reps + 1, batchSize: 1,
      maxTokens: idsOf(b).length, lr: 1e-4, schedule: "constant", maxGradNorm: 0,
      engine: "torch", device: b.device, dtype: b.dtype, python: b.python, env: b.env, ...(b.threads ? { threads: b.threads } : {}),
    }, { onStep: (e) => { stamps.push(performance.now()); events.push(e); } });
    const times = intervals(stamps);
    return {
      times, best: Math.min(...times), device: r.device, peakRssBytes: r.peakRssBytes ?? 0,
      ...(r.gpuPeakBytes !== undefined ? { gpuPeakBytes: r.gpuPeakBytes } : {}), firstLoss: events[0]!.loss, firstGradNorm: events[0]!.gradNorm,
    };
  });
}

function idsOf(b: TorchEngineBench): number[] {
  return JSON.parse(fs.readFileSync(b.idsFile, "utf8")) as number[];
}

/** Runs `f` with a dataset of `reps` + 1 copies of the sequence in a temporary folder. */
async function withData<T>(b: TorchEngineBench, f: (data: string, dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-bench-torch-"));
  try {
    const data = path.join(dir, "data.jsonl");
    const line = JSON.stringify({ input_ids: idsOf(b) });
    fs.writeFileSync(data, Array.from({ length: b.reps + 1 }, () => line).join("\n") + "\n");
    return await f(data, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Seconds between consecutive reports (the first report closes the warm-up). */
function intervals(stamps: number[]): number[] {
  if (stamps.length < 2) throw new Error(`the torch engine reported ${stamps.length} time(s); the benchmark needs reps ≥ 1`);
  return stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000);
}
