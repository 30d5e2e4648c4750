/**
 * The hostile corpus: a few hundred generated bad inputs through every public reader, in a child process. Every
 * one must be refused with a LoraDropError carrying the expected code and naming the file; none may crash the
 * process, hang, or allocate what a length field claims before it is checked. A sample also goes through the CLI.
 * Prints: inputs tried, rejected cleanly, crashes, hangs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { Rng } from "../../extension/core/util/random";
import { tmpDir, BIN } from "../helpers";
import { generateCorpus, DEFAULT_SEED } from "./generate";
import { HostileCase, Category } from "./corpus";
import { runCases, CaseResult } from "./harness";
import { runCase } from "./caseRunner";
import { allMutations } from "./stMutate";
import { encodeSafetensors } from "../../extension/core/io/safetensors";

const SEED = Number(process.env.HOSTILE_SEED ?? DEFAULT_SEED);
const CATEGORIES: Category[] = ["safetensors", "model", "tokenizer", "adapter", "dataset", "profile", "special", "output", "checkpoint", "train", "options"];
/** The most a case may take (the harness calls a case hung only after 60 s, for a busy machine). */
const CASE_TIME_LIMIT_MS = 30_000;
/** The most memory the runner process may reach over the whole corpus. */
const RUNNER_MEMORY_LIMIT_KB = 1.5 * 1024 * 1024;
/**
 * Peak memory the length-field and huge-file cases may add to the runner (they are refused from a few bytes). What
 * they claim starts at 100 MB (a sparse config.json) and goes up to 2^64 bytes, so reading any one of them whole
 * exceeds the budget; below it stays what the runner's first use of an entry point costs (the `run` entry loading a
 * model and a tokenizer before it reaches a special file: 20–30 MB, varying with the collector) and the 10 MB-line
 * cases (≈ 5 MB each): 47–68 MB measured, hence 96 MB.
 */
const LOW_MEMORY_BUDGET_KB = 96 * 1024;

/** Why a result is not a clean rejection, or undefined when it is one. */
function problem(r: CaseResult): string | undefined {
  const c = r.case;
  if (r.kind !== "rejected") return `${r.kind}: ${r.message ?? ""}`;
  if (r.code !== c.expect) return `code ${r.code}, expected ${c.expect}: ${r.message}`;
  if (!r.message!.includes(c.names)) return `message does not name ${c.names}: ${r.message}`;
  return undefined;
}

function describeFailures(results: CaseResult[]): string {
  return results.map((r) => `${r.case.id} (${r.case.note}): ${problem(r)}`).join("\n");
}

test("hostile corpus: every generated input is refused cleanly", async (t) => {
  const corpus = await generateCorpus(tmpDir("lora-drop-hostile-"), SEED);
  const cases = corpus.cases;
  // The cases that must cost no memory go first, alone in a fresh runner, so its peak measures only them.
  let lowStartKb = 0;
  const lowResults = await runCases(cases.filter((c) => c.lowMemory), { onStart: (kb) => { lowStartKb = kb; } });
  const results = [...lowResults, ...(await runCases(cases.filter((c) => !c.lowMemory)))];

  await t.test("the valid bases pass every entry point, so each case fails because of its mutation", async () => {
    const b = corpus.bases;
    const ok = [
      { id: "st-adapter", entry: "safetensors", file: path.join(b.adapterDir, "adapter_model.safetensors") },
      { id: "st-bf16", entry: "safetensors", file: path.join(b.bf16Model, "model.safetensors") },
      { id: "model", entry: "model", modelDir: b.modelDir },
      { id: "sharded", entry: "model", modelDir: b.shardedDir },
      { id: "adapter", entry: "adapter", modelDir: b.modelDir, adapterDir: b.adapterDir },
      { id: "ids", entry: "dataset", file: b.idsData, vocabSize: b.config.vocabSize },
      { id: "text", entry: "dataset", file: b.textData, vocabSize: b.tokConfig.vocabSize, tokenizerModelDir: b.tokModelDir },
      { id: "profile", entry: "profile", file: b.profileFile },
      { id: "run", entry: "run", modelDir: b.modelDir, adapterDir: b.adapterDir, dataFile: b.idsData, criterion: "weight" },
      ...Object.entries(b.pruned!).map(([form, dir]) => ({ id: `pruned-${form}`, entry: "adapter", modelDir: b.modelDir, adapterDir: dir })),
      { id: "resume", entry: "train", options: { ...b.checkpoint!.options, checkpointDir: copyOf(b.checkpoint!.dir), outDir: path.join(corpus.root, "resumed"), resume: true } },
      { id: "cli-prune", entry: "cli", argv: ["prune", "--adapter", b.adapterDir, "--profile", b.profileFile!, "--model", b.modelDir, "--out", path.join(corpus.root, "cli-pruned"), "--quiet"] },
    ].map((c) => ({ category: "safetensors", family: "base", note: "valid", expect: "CONFIG_INVALID", names: "", ...c }) as HostileCase);
    for (const c of ok) {
      const r = await runCase(c);
      assert.equal(r.kind, "accepted", `${c.id}: ${r.message}`);
    }
  });
  await t.test("at least 200 cases, from every category, with unique ids", () => {
    assert.ok(cases.length >= 200, `${cases.length} cases`);
    for (const cat of CATEGORIES) assert.ok(cases.some((c) => c.category === cat), `no ${cat} cases`);
    assert.equal(new Set(cases.map((c) => c.id)).size, cases.length);
  });
  for (const cat of CATEGORIES) {
    await t.test(`${cat}: the expected LoraDropError code, and a message naming the file`, () => {
      const bad = results.filter((r) => r.case.category === cat && problem(r) !== undefined);
      assert.equal(bad.length, 0, describeFailures(bad));
    });
  }
  await t.test("no crash, no hang, no input changed", () => {
    const bad = results.filter((r) => r.kind === "crashed" || r.kind === "hung" || r.kind === "threw" || r.kind === "modified");
    assert.equal(bad.length, 0, describeFailures(bad));
  });
  await t.test(`every case within ${CASE_TIME_LIMIT_MS / 1000} s and the runner within 1.5 GiB`, () => {
    const slow = results.filter((r) => r.ms > CASE_TIME_LIMIT_MS);
    assert.equal(slow.length, 0, slow.map((r) => `${r.case.id}: ${Math.round(r.ms)} ms`).join("\n"));
    const peak = Math.max(...results.map((r) => r.maxRssKb ?? 0));
    assert.ok(peak < RUNNER_MEMORY_LIMIT_KB, `the runner reached ${(peak / 1024).toFixed(0)} MB`);
  });
  await t.test("length fields and huge files are refused without allocating what they claim", () => {
    const peak = Math.max(lowStartKb, ...lowResults.map((r) => r.maxRssKb ?? 0));
    assert.ok(lowResults.length >= 20, `${lowResults.length} low-memory cases`);
    const first = lowResults.find((r) => (r.maxRssKb ?? 0) === peak);
    assert.ok(peak - lowStartKb < LOW_MEMORY_BUDGET_KB,
      `the runner's peak memory grew by ${Math.round((peak - lowStartKb) / 1024)} MB over ${lowResults.length} cases that claim up to 2^64 bytes (peak reached at ${first?.case.id ?? "start"})`);
  });

  const count = (k: CaseResult["kind"]) => results.filter((r) => r.kind === k).length;
  const clean = results.filter((r) => problem(r) === undefined).length;
  const slowest = results.reduce((a, r) => (r.ms > a.ms ? r : a));
  const perCategory = CATEGORIES.map((cat) => `${cat} ${results.filter((r) => r.case.category === cat).length}`).join(", ");
  const report = `hostile corpus (seed ${SEED}): ${results.length} inputs tried (${perCategory}), ${clean} rejected cleanly, ` +
    `${count("crashed")} crashes, ${count("hung")} hangs, ${count("threw")} untyped errors, ${count("accepted")} accepted, ${count("modified")} inputs changed; ` +
    `runner peak ${(Math.max(...results.map((r) => r.maxRssKb ?? 0)) / 1024).toFixed(0)} MB; ` +
    `slowest ${slowest.case.id} ${Math.round(slowest.ms)} ms; peak memory growth over the ${lowResults.length} length-field and huge-file cases ` +
    `${(Math.max(0, ...lowResults.map((r) => (r.maxRssKb ?? 0) - lowStartKb)) / 1024).toFixed(1)} MB ` +
    `(${lowResults.map((r, i) => [r, (r.maxRssKb ?? 0) - (i ? lowResults[i - 1]!.maxRssKb ?? 0 : lowStartKb)] as const).filter(([, d]) => d > 4096).map(([r, d]) => `${r.case.id} +${(d / 1024).toFixed(0)}`).join(", ")})`;
  t.diagnostic(report);

  await t.test("the CLI gives one clear line and exit code 2 for a sample of cases", async () => {
    const rng = new Rng(SEED);
    const cliable = cases.filter((c) => ["model", "adapter", "dataset", "run"].includes(c.entry));
    const sample = rng.shuffle([...cliable]).slice(0, 12);
    const out = path.join(corpus.root, "cli-out.json");
    const failures: string[] = [];
    for (const c of sample) {
      const b = corpus.bases;
      const tok = c.entry === "dataset" && c.tokenizerModelDir !== undefined;
      const args = ["profile",
        "--model", c.modelDir ?? (tok ? b.tokModelDir : b.modelDir),
        "--adapter", c.adapterDir ?? (tok ? b.tokAdapterDir : b.adapterDir),
        "--data", c.file && c.entry === "dataset" ? c.file : c.dataFile ?? b.idsData,
        "--out", out, "--device", "cpu", "--max-tokens", "16", "--quiet",
        ...(c.criterion ? ["--criterion", c.criterion] : [])];
      const r = await runCli(args);
      const line = `${c.id}: exit ${r.code}, ${r.stderr.trim()}`;
      if (r.code !== 2 || !r.stderr.includes(`error [${c.expect}]`) || !r.stderr.includes(c.names) || /internal error|\n\s+at /.test(r.stderr)) failures.push(line);
      if (fs.existsSync(out)) failures.push(`${c.id}: wrote ${out} although it failed`);
      fs.rmSync(out, { force: true });
    }
    assert.deepEqual(failures, []);
  });
});

test("the safetensors mutations are a function of the seed", () => {
  const root = tmpDir("lora-drop-hostile-seed-");
  const file = path.join(root, "a.safetensors");
  fs.writeFileSync(file, encodeSafetensors([
    { name: "a", dtype: "F32", shape: [3, 4], data: new Float32Array(12).fill(1) },
    { name: "b", dtype: "F16", shape: [5], data: new Float32Array(5).fill(2) },
    { name: "c", dtype: "BF16", shape: [2, 2], data: new Float32Array(4).fill(3) },
  ], { format: "pt" }));
  const bytes = fs.readFileSync(file);
  const a = allMutations(new Rng(5), bytes);
  const b = allMutations(new Rng(5), bytes);
  const c = allMutations(new Rng(6), bytes);
  assert.deepEqual(a.map((m) => m.bytes.toString("hex")), b.map((m) => m.bytes.toString("hex")));
  assert.notDeepEqual(a.map((m) => m.bytes.toString("hex")), c.map((m) => m.bytes.toString("hex")), "another seed draws other cases");
});

/** A copy of a folder (a valid resume writes into its checkpoint folder). */
function copyOf(dir: string): string {
  const to = `${dir}-copy-${process.pid}`;
  fs.cpSync(dir, to, { recursive: true });
  return to;
}

function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}
