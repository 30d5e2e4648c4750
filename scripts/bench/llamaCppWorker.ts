/**
 * One llama.cpp measurement, in its own process so its peak RSS is its own: loads a GGUF file through
 * node-llama-cpp's prebuilt CPU binary (installed under `--lib` by llamaCpp.ts's setup, never downloaded here),
 * evaluates the token ids once as a warm-up, then `reps` times from an empty context (prompt processing, one batch),
 * and prints one JSON line.
 *
 * Usage: node out/scripts/bench/llamaCppWorker.js --lib DIR --gguf FILE --ids FILE [--threads 2] [--reps 3]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/** What the worker prints. */
export interface LlamaCppResult {
  times: number[];
  best: number;
  loadSeconds: number;
  peakRssBytes: number;
  threads: number;
  /** llama.cpp's own description of the CPU features its loaded backend uses. */
  systemInfo: string;
}

/** The parts of node-llama-cpp's API this worker calls. */
interface NodeLlamaCpp {
  getLlama(opts: Record<string, unknown>): Promise<{
    systemInfo: string;
    loadModel(opts: Record<string, unknown>): Promise<{
      tokenize(text: string): number[];
      createContext(opts: Record<string, unknown>): Promise<{
        getSequence(): { evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>; clearHistory(): Promise<void> };
        dispose(): Promise<void>;
      }>;
      dispose(): Promise<void>;
    }>;
    dispose(): Promise<void>;
  }>;
}

// TypeScript compiles import() to require() under CommonJS; node-llama-cpp is an ES module, so keep a real import().
const importModule = new Function("url", "return import(url)") as (url: string) => Promise<unknown>;

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      lib: { type: "string" }, gguf: { type: "string" }, ids: { type: "string" },
      threads: { type: "string", default: "2" }, reps: { type: "string", default: "3" },
    },
  });
  if (!a.lib || !a.gguf || !a.ids) throw new Error("usage: llamaCppWorker --lib DIR --gguf FILE --ids FILE");
  const entry = path.join(a.lib, "node_modules", "node-llama-cpp", "dist", "index.js");
  const nlc = (await importModule(pathToFileURL(entry).href)) as NodeLlamaCpp;
  const ids = JSON.parse(fs.readFileSync(a.ids, "utf8")) as number[];
  const threads = Number(a.threads);
  const t0 = performance.now();
  // build "never" and skipDownload: only the prebuilt binary may load; nothing is fetched or compiled.
  const llama = await nlc.getLlama({ gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, logLevel: "error", maxThreads: threads });
  const model = await llama.loadModel({ modelPath: path.resolve(a.gguf), gpuLayers: 0, useMmap: true });
  const context = await model.createContext({ contextSize: Math.max(512, ids.length + 1), batchSize: Math.max(512, ids.length), threads, flashAttention: false });
  const seq = context.getSequence();
  const loadSeconds = (performance.now() - t0) / 1000;
  const times: number[] = [];
  for (let rep = 0; rep <= Number(a.reps); rep++) {
    const s = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    if (rep > 0) times.push((performance.now() - s) / 1000);
    await seq.clearHistory();
  }
  const result: LlamaCppResult = {
    times, best: Math.min(...times), loadSeconds, peakRssBytes: process.resourceUsage().maxRSS * 1024, threads, systemInfo: llama.systemInfo,
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
