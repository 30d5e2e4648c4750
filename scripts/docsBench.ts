/**
 * `npm run docs:bench`: renders the benchmark figures in docs/*.md (benchmarks.md, engines.md, …) and the README
 * from the JSON the bench scripts wrote (docs/bench/*.json, each with its machine, date and command), so no figure
 * in the docs is typed by hand.
 * The document holds its prose; each `<!-- bench:NAME.json -->` … `<!-- /bench -->` block is replaced by the
 * tables of that file. `--check` changes nothing and exits 1 when the document is not what the JSON gives.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BENCH_JSON_VERSION, type BenchHeader } from "./bench/machine";

const GIB = 1024 ** 3;

/** A bench JSON as written by the bench scripts (the fields the tables read). */
type BenchJson = BenchHeader & Record<string, unknown>;

/**
 * The block markers: `<!-- bench:profile.json -->` … `<!-- /bench -->` for the tables, `<!-- bench:sweep.json
 * summary -->` … for a one-sentence summary (in the README).
 */
const BLOCK = /<!-- bench:([\w.-]+\.json)( summary)? -->\n[\s\S]*?<!-- \/bench -->/g;

/**
 * The document with every block rendered from the JSON files in `benchDir`; `linkDir` is the bench folder as the
 * document links to it (`bench` from docs/, `docs/bench` from the README).
 */
export function renderBenchDoc(doc: string, benchDir: string, linkDir = "bench"): string {
  return doc.replace(BLOCK, (_, file: string, summary: string | undefined) => {
    const json = readBench(path.join(benchDir, file));
    const body = summary ? renderSummary(json, file, linkDir) : renderBench(json, file, linkDir);
    return `<!-- bench:${file}${summary ?? ""} -->\n${body}\n<!-- /bench -->`;
  });
}

/** Reads and checks one bench JSON. */
export function readBench(file: string): BenchJson {
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as BenchJson;
  if (json.version !== BENCH_JSON_VERSION || !json.machine || !json.date || !json.command) {
    throw new Error(`${file}: not a bench JSON of version ${BENCH_JSON_VERSION} with machine, date and command (run the bench again with --json)`);
  }
  return json;
}

/** The tables of one bench, with the line saying where the figures come from. */
export function renderBench(j: BenchJson, file: string, linkDir = "bench"): string {
  const tables: Record<string, (j: BenchJson) => string[]> = { profile: profileTable, train: trainTable, scale: scaleTable, qr: qrTable, sweep: sweepTable };
  const render = tables[j.bench];
  if (!render) throw new Error(`${file}: unknown bench ${j.bench}`);
  return [provenance(j, file, linkDir), "", ...render(j)].join("\n");
}

/** One sentence for the README: what the bench measured, on what and when, linked to its JSON. */
export function renderSummary(j: BenchJson, file: string, linkDir = "bench"): string {
  const summaries: Record<string, (j: BenchJson) => string> = { sweep: sweepSummary };
  const render = summaries[j.bench];
  if (!render) throw new Error(`${file}: bench ${j.bench} has no summary`);
  return `${render(j)} (${j.machine.cpu}, ${j.machine.cores} cores, ${j.date.slice(0, 10)}, load average ${j.loadAverage[0]}: [${file}](${linkDir}/${file}))`;
}

/** "Measured on AMD EPYC … (2 cores, 24 GiB), 2026-12-03, load average 3.1 at the start: `npm run bench -- …`". */
function provenance(j: BenchJson, file: string, linkDir: string): string {
  const m = j.machine;
  return `*Measured on ${m.cpu} (${m.cores} cores, ${(m.memoryBytes / GIB).toFixed(0)} GiB, ${m.platform}), ${j.date.slice(0, 10)}, ` +
    `load average ${j.loadAverage[0]} at the start; onnxruntime-node ${m.onnxruntime}, Node ${m.node}. ` +
    `Command: \`${j.command}\`. Source: [${linkDir}/${file}](${linkDir}/${file}).*`;
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)];
}

const gib = (b: number) => `${(b / GIB).toFixed(2)} GiB`;
const pct = (x: number) => `${Math.round(100 * x)} %`;

function torchLine(j: BenchJson): string[] {
  const t = j.torch as { skipped?: string; blas?: string } | undefined;
  if (t?.skipped) return ["", `PyTorch reference not run in this measurement: ${t.skipped}.`];
  return t?.blas ? ["", `PyTorch reference: ${t.blas}.`] : [];
}

/**
 * Where one run measured several engines on the same pass and length, each one's best tokens per second as a ratio
 * of the first engine's ("seq 256 profile: torch engine 0.52× onnxruntime, pytorch 0.50×").
 */
export function ratioLines(items: { seq: number; pass?: string; engine: string; tokensPerSecond: number }[]): string[] {
  const groups = new Map<string, Map<string, number>>();
  for (const r of items) {
    const key = `seq ${r.seq}${r.pass ? ` ${r.pass}` : ""}`;
    const best = groups.get(key) ?? new Map<string, number>();
    best.set(r.engine, Math.max(best.get(r.engine) ?? 0, r.tokensPerSecond));
    groups.set(key, best);
  }
  const lines: string[] = [];
  for (const [key, best] of groups) {
    const [[first, base], ...others] = [...best];
    if (others.length === 0) continue;
    lines.push(`- ${key}: ${others.map(([e, v]) => `${e} ${(v / base).toFixed(2)}×`).join(", ")} ${first}'s tokens per second.`);
  }
  return lines.length ? ["", ...lines] : [];
}

function profileTable(j: BenchJson): string[] {
  type M = { engine: string; seq: number; pass: string; seconds: number; tokensPerSecond: number; gflops: number; peakRssBytes: number; note?: string };
  const results = j.results as M[];
  const peak = j.peak as number;
  const weights = j.weightBytes as number;
  const rows = results.map((r) => [r.pass, String(r.seq), r.engine, r.tokensPerSecond.toFixed(1), r.gflops.toFixed(0), pct(r.gflops / peak), gib(r.peakRssBytes), `${(r.peakRssBytes / weights).toFixed(2)}×`]);
  const agreement = (j.agreement as { seq: number; pass: string; taps: number; logits?: number }[] | undefined) ?? [];
  return [
    `Model: random weights of TinyLlama-1.1B's shape, fp32, ${gib(weights)}; batch 1; best of the timed runs. % of peak is against ${peak} GFLOP/s.`,
    "",
    ...table(["pass", "seq", "engine", "tok/s", "GFLOP/s", "% of peak", "peak RSS", "RSS / fp32 weights"], rows),
    ...torchLine(j),
    ...ratioLines(results),
    ...agreement.map((a) => `- seq ${a.seq} ${a.pass}: the engines' taps differ by ${a.taps.toExponential(1)}${a.logits !== undefined ? `, logits by ${a.logits.toExponential(1)}` : ""} of their scale.`),
    ...(j.comparison ? ["", ...comparisonTable(j.comparison as Comparison)] : []),
  ];
}

/** The engine comparison of `npm run bench -- --precision … --llama-cpp` (scripts/bench/llamaCpp.ts's JSON). */
interface Comparison {
  seq: number;
  threads: number;
  rounds: number;
  peak: { fp32Gflops: number; int8Gops?: number; method: string; how: string };
  llamaCppSkipped?: string;
  engines: { label: string; kind: "ours" | "llama.cpp"; arg: string; tokensPerSecond: number; gflops: number; rss: number; maxImportanceDelta?: number; keptEqual?: boolean }[];
}

/** Pairs whose tokens-per-second ratio the comparison states: our precision against llama.cpp's nearest format. */
export const PEER_FORMATS: readonly [string, string][] = [["fp32", "F32"], ["int8", "Q8_0"], ["int4", "Q4_0"]];

/** Our profile pass at each precision beside llama.cpp's prompt processing on the same tokens, with the ratios. */
export function comparisonTable(c: Comparison): string[] {
  const int8 = (e: Comparison["engines"][number]) => (e.kind === "ours" ? e.arg !== "fp32" : /^llama\.cpp Q/.test(e.label)) && c.peak.int8Gops;
  const rows = c.engines.map((e) => [
    e.label, e.tokensPerSecond.toFixed(1), e.gflops.toFixed(0),
    int8(e) ? `${pct(e.gflops / c.peak.int8Gops!)} of int8` : `${pct(e.gflops / c.peak.fp32Gflops)} of fp32`, gib(e.rss),
    e.maxImportanceDelta !== undefined ? `${e.maxImportanceDelta.toExponential(1)}, kept set at T = 0.9 ${e.keptEqual ? "equal" : "differs"}` : "",
  ]);
  const tps = (label: string) => c.engines.find((e) => e.label === label)?.tokensPerSecond;
  const ratios = PEER_FORMATS.flatMap(([ours, peer]) => {
    const a = tps(`lora-drop profile ${ours}`), b = tps(`llama.cpp ${peer}`);
    return a !== undefined && b !== undefined ? [`- ${ours} ${(a / b).toFixed(2)}× llama.cpp ${peer}'s tokens per second.`] : [];
  });
  return [
    `Engines on the same ${c.seq} tokens, ${c.threads} threads, alternated over ${c.rounds} rounds (best run of each). ` +
      `Peak ${c.peak.method}: fp32 ${c.peak.fp32Gflops.toFixed(0)} GFLOP/s${c.peak.int8Gops ? `, int8 ${c.peak.int8Gops.toFixed(0)} GOP/s` : ""} (${c.peak.how}). ` +
      "llama.cpp runs every layer and the last token's logits; ours, the profile pass up to the last LoRA layer.",
    "",
    ...table(["engine", "tok/s", "GFLOP/s", "% of peak", "peak RSS", "importance vs fp32: max abs ΔI"], rows),
    ...(c.llamaCppSkipped ? ["", `llama.cpp not run: ${c.llamaCppSkipped}.`] : []),
    ...(ratios.length ? ["", ...ratios] : []),
  ];
}

function trainTable(j: BenchJson): string[] {
  type R = { seq: number; engine: string; best: number; peakRssBytes: number; flops: number; firstLoss: number; note?: string };
  const peak = j.peak as number;
  // Each engine's best round per length (every round is in the JSON).
  const best = new Map<string, R>();
  for (const r of j.results as R[]) {
    const key = `${r.seq} ${r.engine}`;
    if (!best.has(key) || r.best < best.get(key)!.best) best.set(key, r);
  }
  const weights = j.weightBytes as number;
  // The onnx engine's note says what a memory budget made it do (recompute, stream); the others' name their library.
  const label = (r: R) => (r.note && r.engine.startsWith("onnxruntime") ? `${r.engine} (${r.note})` : r.engine);
  const rows = [...best.values()].map((r) => [String(r.seq), label(r), (r.seq / r.best).toFixed(1), `${r.best.toFixed(2)} s`, (r.flops / r.best / 1e9).toFixed(0), pct(r.flops / r.best / 1e9 / peak),
    gib(r.peakRssBytes), `${(r.peakRssBytes / weights).toFixed(2)}×`, r.firstLoss.toFixed(5)]);
  return [
    `One LoRA training step (forward, backward, AdamW; r = 8 on q_proj and v_proj) on the same model, batch 1; best of the timed steps.`,
    "",
    ...table(["seq", "engine", "tok/s", "step", "GFLOP/s", "% of peak", "peak RSS", "RSS / fp32 weights", "first-step loss"], rows),
    ...torchLine(j),
    ...ratioLines((j.results as R[]).map((r) => ({ seq: r.seq, engine: r.engine, tokensPerSecond: r.seq / r.best }))),
  ];
}

function scaleTable(j: BenchJson): string[] {
  const p = j.profile as { tokens: number; seconds: number; cpuSeconds: number; firstBlockSeconds: number; layersPerBlock: number; peakSampledBytes: number; maxRssBytes: number; device: string; precision?: string; streamed?: boolean; setupSeconds?: number } | undefined;
  const t = j.train as { seconds: number; peakSampledBytes: number } | undefined;
  const rows: string[][] = [];
  if (p) {
    // Files written before quantized runs were streamed fp32 runs.
    const streamed = p.streamed ?? true;
    rows.push([`profile, ${p.precision ?? "fp32"}, ${streamed ? "streamed" : "whole"}`, `${p.seconds.toFixed(1)} s for ${p.tokens} tokens (${(p.tokens / p.seconds).toFixed(1)} tok/s, ${((j.flops as number) / p.seconds / 1e9).toFixed(0)} GFLOP/s) on ${p.device}`]);
    if (p.setupSeconds !== undefined) rows.push(["of which setup, then the run", `${p.setupSeconds.toFixed(1)} s (model, weights cache, graph, session creation with onnxruntime's prepacking), then ${(p.seconds - p.setupSeconds).toFixed(1)} s`]);
    if (j.firstRunSeconds !== undefined) rows.push(["first run, quantizing into the cache", `${(j.firstRunSeconds as number).toFixed(1)} s`]);
    if (streamed) rows.push(["first block done after", `${p.firstBlockSeconds.toFixed(1)} s (${p.layersPerBlock} layer(s) per block)`]);
    rows.push(["peak memory", `${gib(p.peakSampledBytes)} sampled RSS, ${gib(p.maxRssBytes)} max RSS (budget ${j.budget !== undefined ? gib(j.budget as number) : "automatic"})`]);
  }
  if (t) rows.push(["one streamed training step", `${t.seconds.toFixed(1)} s, peak ${gib(t.peakSampledBytes)}`]);
  const how = p?.streamed === false ? `its projections quantized to ${p.precision} at load and run whole` : "run block by block from its files";
  return [`A Llama-2-7B-shaped model (random BF16 weights, 13 GB on disk), ${how}.`, "", ...table(["what", "measured"], rows)];
}

type SweepBench = BenchJson & {
  shape: { numLayers: number; hiddenSize: number }; weightBytes: number; examples: number; tokensPerExample: number; device: string;
  profileSeconds: number; configurations: number; sweepSeconds: number; secondsPerConfiguration: number; tokensPerSecond: number;
  peakRssBytes: number; loadAverageEnd: number[];
};

/** Every threshold of the bench model: one pruned adapter per kept-set size, plus the base model and the full adapter. */
const everyThreshold = (j: SweepBench) => j.shape.numLayers + 2;
const minutes = (s: number) => (s >= 90 ? `${(s / 60).toFixed(0)} min` : `${s.toFixed(0)} s`);

function sweepTable(json: BenchJson): string[] {
  const j = json as SweepBench;
  const tokens = j.examples * j.tokensPerExample;
  return [
    `The benchmark model (random weights of TinyLlama-1.1B's shape, ${j.shape.numLayers} layers, fp32, ${gib(j.weightBytes)}; LoRA r = 8 on q/v), ` +
      `${j.examples} examples × ${j.tokensPerExample} tokens, on ${j.device}; one session for every configuration. Load average at the end ${j.loadAverageEnd[0]}.`,
    "",
    ...table(["what", "measured"], [
      [`output profile of the ${tokens.toLocaleString("en-US")} tokens (once, for the thresholds)`, `${j.profileSeconds.toFixed(1)} s`],
      [`sweep: ${j.configurations} configurations × ${tokens.toLocaleString("en-US")} tokens`, `${j.sweepSeconds.toFixed(0)} s: ${j.secondsPerConfiguration.toFixed(1)} s per configuration, ${j.tokensPerSecond.toFixed(0)} tokens/s`],
      [`every threshold (${everyThreshold(j)} configurations: base, full adapter, ${j.shape.numLayers} kept-set sizes)`, `≈ ${minutes(everyThreshold(j) * j.secondsPerConfiguration)} at that rate`],
      ["peak memory of the sweep", `${gib(j.peakRssBytes)} RSS`],
    ]),
  ];
}

function sweepSummary(json: BenchJson): string {
  const j = json as SweepBench;
  return `On the benchmark model (TinyLlama-1.1B's shape, ${j.examples} × ${j.tokensPerExample} tokens) a sweep costs ` +
    `${j.secondsPerConfiguration.toFixed(0)} s per threshold on the CPU, ≈ ${minutes(everyThreshold(j) * j.secondsPerConfiguration)} ` +
    `for all ${everyThreshold(j)} configurations`;
}

function qrTable(j: BenchJson): string[] {
  const qr = j.qr as { rows: number; k: number; householderSeconds: number; mlMatrixSeconds?: number }[];
  const modules = j.modules as { module: string; out: number; in: number; layers: number; r: number; seconds: number }[];
  return [
    "The shared LoRA's start (prune, share mode) at Llama-2-7B widths: the QR of the stacked factors, and the whole computation per module.",
    "",
    ...table(["QR of", "householderQr.ts", "ml-matrix QrDecomposition + Q", "ratio"],
      qr.map((q) => [`${q.rows}×${q.k}`, `${q.householderSeconds.toFixed(2)} s`, q.mlMatrixSeconds !== undefined ? `${q.mlMatrixSeconds.toFixed(2)} s` : "not run", q.mlMatrixSeconds !== undefined ? `${(q.mlMatrixSeconds / q.householderSeconds).toFixed(1)}×` : ""])),
    "",
    ...table(["module", "shape", "layers × rank", "shared-LoRA start"], modules.map((m) => [m.module, `${m.out}×${m.in}`, `${m.layers} × ${m.r}`, `${m.seconds.toFixed(2)} s`])),
  ];
}

/** The pages under docs/ that hold bench blocks. */
export function benchPages(docsDir: string): string[] {
  return fs.readdirSync(docsDir).filter((f) => f.endsWith(".md")).sort()
    .filter((f) => fs.readFileSync(path.join(docsDir, f), "utf8").includes("<!-- bench:"));
}

function main(): number {
  const check = process.argv.includes("--check");
  let stale = 0;
  const pages = [...benchPages("docs").map((p) => ({ doc: path.join("docs", p), linkDir: "bench" })), { doc: "README.md", linkDir: "docs/bench" }];
  for (const { doc, linkDir } of pages) {
    const before = fs.readFileSync(doc, "utf8");
    const after = renderBenchDoc(before, path.join("docs", "bench"), linkDir);
    if (check) {
      if (after !== before) {
        console.error(`${doc} differs from what docs/bench/*.json give; run npm run docs:bench`);
        stale++;
      }
      continue;
    }
    fs.writeFileSync(doc, after);
    console.log(`${doc}: ${[...before.matchAll(BLOCK)].length} blocks rendered from docs/bench/`);
  }
  if (check && stale === 0) console.log("the bench blocks in docs/ are up to date");
  return stale ? 1 : 0;
}

if (require.main === module) process.exitCode = main();
