/**
 * `npm run docs:bench`: renders the benchmark figures in docs/benchmarks.md from the JSON the bench scripts wrote
 * (docs/bench/*.json, each with its machine, date and command), so no figure in the docs is typed by hand.
 * The document holds its prose; each `<!-- bench:NAME.json -->` … `<!-- /bench -->` block is replaced by the
 * tables of that file. `--check` changes nothing and exits 1 when the document is not what the JSON gives.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BENCH_JSON_VERSION, type BenchHeader } from "./bench/machine";

const GIB = 1024 ** 3;

/** A bench JSON as written by the bench scripts (the fields the tables read). */
type BenchJson = BenchHeader & Record<string, unknown>;

/** The block markers: `<!-- bench:profile.json -->` … `<!-- /bench -->`. */
const BLOCK = /<!-- bench:([\w.-]+\.json) -->\n[\s\S]*?<!-- \/bench -->/g;

/** The document with every block rendered from the JSON files in `benchDir`. */
export function renderBenchDoc(doc: string, benchDir: string): string {
  return doc.replace(BLOCK, (_, file: string) => {
    const json = readBench(path.join(benchDir, file));
    return `<!-- bench:${file} -->\n${renderBench(json, file)}\n<!-- /bench -->`;
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
export function renderBench(j: BenchJson, file: string): string {
  const tables: Record<string, (j: BenchJson) => string[]> = { profile: profileTable, train: trainTable, scale: scaleTable, qr: qrTable };
  const render = tables[j.bench];
  if (!render) throw new Error(`${file}: unknown bench ${j.bench}`);
  return [provenance(j, file), "", ...render(j)].join("\n");
}

/** "Measured on AMD EPYC … (2 cores, 24 GiB), 2026-12-03, load average 3.1 at the start: `npm run bench -- …`". */
function provenance(j: BenchJson, file: string): string {
  const m = j.machine;
  return `*Measured on ${m.cpu} (${m.cores} cores, ${(m.memoryBytes / GIB).toFixed(0)} GiB, ${m.platform}), ${j.date.slice(0, 10)}, ` +
    `load average ${j.loadAverage[0]} at the start; onnxruntime-node ${m.onnxruntime}, Node ${m.node}. ` +
    `Command: \`${j.command}\`. Source: [bench/${file}](bench/${file}).*`;
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
    ...agreement.map((a) => `- seq ${a.seq} ${a.pass}: the engines' taps differ by ${a.taps.toExponential(1)}${a.logits !== undefined ? `, logits by ${a.logits.toExponential(1)}` : ""} of their scale.`),
  ];
}

function trainTable(j: BenchJson): string[] {
  type R = { seq: number; engine: string; best: number; peakRssBytes: number; flops: number; firstLoss: number };
  const peak = j.peak as number;
  const weights = j.weightBytes as number;
  const rows = (j.results as R[]).map((r) => [String(r.seq), r.engine, (r.seq / r.best).toFixed(1), `${r.best.toFixed(2)} s`, (r.flops / r.best / 1e9).toFixed(0), pct(r.flops / r.best / 1e9 / peak),
    gib(r.peakRssBytes), `${(r.peakRssBytes / weights).toFixed(2)}×`, r.firstLoss.toFixed(5)]);
  return [
    `One LoRA training step (forward, backward, AdamW; r = 8 on q_proj and v_proj) on the same model, batch 1; best of the timed steps.`,
    "",
    ...table(["seq", "engine", "tok/s", "step", "GFLOP/s", "% of peak", "peak RSS", "RSS / fp32 weights", "first-step loss"], rows),
    ...torchLine(j),
  ];
}

function scaleTable(j: BenchJson): string[] {
  const p = j.profile as { tokens: number; seconds: number; cpuSeconds: number; firstBlockSeconds: number; layersPerBlock: number; peakSampledBytes: number; maxRssBytes: number; device: string } | undefined;
  const t = j.train as { seconds: number; peakSampledBytes: number } | undefined;
  const rows: string[][] = [];
  if (p) {
    rows.push(["profile, streamed", `${p.seconds.toFixed(1)} s for ${p.tokens} tokens (${(p.tokens / p.seconds).toFixed(1)} tok/s, ${((j.flops as number) / p.seconds / 1e9).toFixed(0)} GFLOP/s) on ${p.device}`]);
    rows.push(["first block done after", `${p.firstBlockSeconds.toFixed(1)} s (${p.layersPerBlock} layer(s) per block)`]);
    rows.push(["peak memory", `${gib(p.peakSampledBytes)} sampled RSS (budget ${gib(j.budget as number)})`]);
  }
  if (t) rows.push(["one streamed training step", `${t.seconds.toFixed(1)} s, peak ${gib(t.peakSampledBytes)}`]);
  return ["A Llama-2-7B-shaped model (random BF16 weights, 13 GB on disk), run block by block from its files.", "", ...table(["what", "measured"], rows)];
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

function main(): number {
  const doc = path.join("docs", "benchmarks.md");
  const before = fs.readFileSync(doc, "utf8");
  const after = renderBenchDoc(before, path.join("docs", "bench"));
  if (process.argv.includes("--check")) {
    if (after !== before) {
      console.error(`${doc} differs from what docs/bench/*.json give; run npm run docs:bench`);
      return 1;
    }
    console.log(`${doc} is up to date`);
    return 0;
  }
  fs.writeFileSync(doc, after);
  console.log(`${doc}: ${[...before.matchAll(BLOCK)].length} blocks rendered from docs/bench/`);
  return 0;
}

if (require.main === module) process.exitCode = main();
