/**
 * The benchmark figures in docs/benchmarks.md are the bench JSON's, rendered by scripts/docsBench.ts: the page is
 * what the committed JSON gives (so a hand edit or a stale table fails), every JSON is shown, and each carries the
 * machine, the date and the command it was measured with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { benchPages, comparisonTable, ratioLines, readBench, renderBench, renderBenchDoc, renderSummary } from "../../../scripts/docsBench";
import { benchHeader } from "../../../scripts/bench/machine";
import { REPO_ROOT, tmpDir } from "../../helpers";

const docs = path.join(REPO_ROOT, "docs");
const benchDir = path.join(docs, "bench");

const pages = () => [
  ...benchPages(docs).map((f) => ({ f, doc: fs.readFileSync(path.join(docs, f), "utf8"), linkDir: "bench" })),
  { f: "README.md", doc: fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8"), linkDir: "docs/bench" },
];

test("each page with bench blocks (docs/*.md, the README) is exactly what docs/bench/*.json render to (npm run docs:bench)", () => {
  const found = pages();
  assert.ok(found.some((p) => p.f === "benchmarks.md"), "benchmarks.md holds bench blocks");
  for (const { doc, linkDir } of found) assert.equal(renderBenchDoc(doc, benchDir, linkDir), doc);
});

test("every bench JSON is shown on a page and says where and when it was measured", () => {
  const files = fs.readdirSync(benchDir).filter((f) => f.endsWith(".json"));
  assert.ok(files.length >= 2, `bench results are committed (${files.join(", ")})`);
  for (const f of files) {
    const doc = pages().find((p) => p.doc.includes(`<!-- bench:${f} -->`))?.doc;
    assert.ok(doc, `${f} has a block on a page`);
    const j = readBench(path.join(benchDir, f));
    assert.ok(j.machine.cpu && j.machine.cores > 0 && j.machine.memoryBytes > 0, `${f} names the machine`);
    assert.ok(!Number.isNaN(Date.parse(j.date)), `${f} has a date`);
    assert.match(j.command, /^npm run bench/, `${f} records its command`);
    const block = doc.slice(doc.indexOf(`<!-- bench:${f} -->`));
    assert.ok(block.includes(j.machine.cpu) && block.includes(j.date.slice(0, 10)), `${f}'s tables say the machine and the date`);
  }
});

test("the renderer refuses a JSON without its machine and date, and renders one with them", () => {
  const dir = tmpDir();
  const bare = path.join(dir, "bare.json");
  fs.writeFileSync(bare, JSON.stringify({ bench: "qr", qr: [], modules: [] }));
  assert.throws(() => readBench(bare), /machine, date and command/);
  const json = { ...benchHeader("qr", "npm run bench:qr"), reps: 1, qr: [{ rows: 4096, k: 256, householderSeconds: 0.5, mlMatrixSeconds: 2 }], modules: [{ module: "q_proj", out: 4096, in: 4096, layers: 32, r: 8, seconds: 1.25 }] };
  const text = renderBench(json, "qr.json");
  assert.ok(text.startsWith(`*Measured on ${json.machine.cpu} (${json.machine.cores} cores`));
  assert.match(text, /\| 4096×256 \| 0\.50 s \| 2\.00 s \| 4\.0× \|/);
  assert.match(text, /\| q_proj \| 4096×4096 \| 32 × 8 \| 1\.25 s \|/);
});

test("engines measured side by side get each one's best as a ratio of the first engine's", () => {
  const lines = ratioLines([
    { seq: 256, pass: "profile", engine: "onnxruntime", tokensPerSecond: 80 },
    { seq: 256, pass: "profile", engine: "torch engine", tokensPerSecond: 40 },
    { seq: 256, pass: "profile", engine: "onnxruntime", tokensPerSecond: 100 },
    { seq: 256, pass: "profile", engine: "pytorch", tokensPerSecond: 25 },
    { seq: 128, pass: "profile", engine: "onnxruntime", tokensPerSecond: 90 },
  ]);
  assert.deepEqual(lines, ["", "- seq 256 profile: torch engine 0.40×, pytorch 0.25× onnxruntime's tokens per second."]);
});

test("a sweep bench renders as a table and, for the README, as one sentence; both scale to every threshold", () => {
  const json = {
    ...benchHeader("sweep", "npm run bench:sweep"), loadAverageEnd: [2.5], shape: { numLayers: 22, hiddenSize: 2048 }, weightBytes: 4.4e9,
    examples: 64, tokensPerExample: 128, device: "cpu", profileSeconds: 80, configurations: 5, sweepSeconds: 450, secondsPerConfiguration: 90,
    tokensPerSecond: 91, peakRssBytes: 4.9e9,
  };
  const text = renderBench(json, "sweep.json");
  assert.match(text, /\| sweep: 5 configurations × 8,192 tokens \| 450 s: 90\.0 s per configuration, 91 tokens\/s \|/);
  assert.match(text, /\| every threshold \(24 configurations: base, full adapter, 22 kept-set sizes\) \| ≈ 36 min at that rate \|/);
  const line = renderSummary(json, "sweep.json", "docs/bench");
  assert.match(line, /costs 90 s per threshold on the CPU, ≈ 36 min for all 24 configurations/);
  assert.ok(line.endsWith(`[sweep.json](docs/bench/sweep.json))`) && line.includes(json.date.slice(0, 10)));
});

test("the engine comparison: each precision beside llama.cpp, % of the peak its compute uses, fidelity and the peer ratios", () => {
  const engine = (label: string, kind: "ours" | "llama.cpp", arg: string, tokensPerSecond: number, extra = {}) => ({ label, kind, arg, tokensPerSecond, gflops: tokensPerSecond, rss: 2 * 1024 ** 3, ...extra });
  const lines = comparisonTable({
    seq: 256, threads: 2, rounds: 5, peak: { fp32Gflops: 200, int8Gops: 800, method: "measured", how: "FMA chains" },
    engines: [
      engine("lora-drop profile fp32", "ours", "fp32", 100), engine("lora-drop profile int8", "ours", "int8", 240, { maxImportanceDelta: 4e-4, keptEqual: true }),
      engine("lora-drop profile int4", "ours", "int4", 180, { maxImportanceDelta: 3.7e-3, keptEqual: false }),
      engine("llama.cpp F32", "llama.cpp", "f32.gguf", 50), engine("llama.cpp Q8_0", "llama.cpp", "q8.gguf", 120), engine("llama.cpp Q4_0", "llama.cpp", "q4.gguf", 200),
    ],
  });
  assert.ok(lines.includes("| lora-drop profile int8 | 240.0 | 240 | 30 % of int8 | 2.00 GiB | 4.0e-4, kept set at T = 0.9 equal |"));
  assert.ok(lines.includes("| lora-drop profile int4 | 180.0 | 180 | 23 % of int8 | 2.00 GiB | 3.7e-3, kept set at T = 0.9 differs |"));
  assert.ok(lines.includes("| llama.cpp F32 | 50.0 | 50 | 25 % of fp32 | 2.00 GiB |  |"));
  assert.deepEqual(lines.slice(-3), [
    "- fp32 2.00× llama.cpp F32's tokens per second.", "- int8 2.00× llama.cpp Q8_0's tokens per second.", "- int4 0.90× llama.cpp Q4_0's tokens per second.",
  ]);
});
