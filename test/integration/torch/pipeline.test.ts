/**
 * The LoRA-drop pipeline on the torch engine against the onnx engine, on the same data and settings: a Llama
 * (grouped-query attention) language model and a RoBERTa sequence classifier. Every phase runs on the chosen
 * engine — the sample training, the profile, the LoRA-drop and full-LoRA trainings with their final training-set
 * loss, and the held-out scores — so the reports must agree: importance within 1e-5, the same kept and shared
 * layers, per-step and evaluation losses within 1e-5 relative, the same classifier accuracy; and the torch run
 * says so (device "torch cpu float32", a profile whose engine is torch). Over two nodes (two CLIs, one process
 * each), node 1 takes part in every training and ends cleanly, and node 0 writes what one process writes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runPipeline } from "../../../extension/core/pipeline/pipeline";
import type { PipelineReport, RunSummary } from "../../../extension/core/pipeline/report";
import { readProfile } from "../../../extension/core/importance/profileFile";
import { FixtureArch, makeTorchFixtures, torchEnvOrSkip } from "../../torchEnv";
import { freePort } from "../../../extension/core/torch/launcher";
import { BIN, tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();
const quiet = { log: { info() {}, warn() {} } };

/** 40 examples of random token ids (labels for the classifier), so the pipeline has a sample, a split and strata. */
function dataset(arch: FixtureArch, file: string): void {
  let seed = 11;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lines = Array.from({ length: 40 }, (_, i) => {
    const n = 4 + Math.floor(next() * 9);
    const body = Array.from({ length: n }, () => 3 + Math.floor(next() * 90));
    return JSON.stringify(arch === "roberta" ? { input_ids: [0, ...body, 2], label: i % 3 } : { input_ids: body });
  });
  fs.writeFileSync(file, lines.join("\n") + "\n");
}

function close(what: string, got: number | null | undefined, want: number | null | undefined, rel = 1e-5): void {
  if (want === null) return assert.equal(got, null, `${what}: measured by one engine only`);
  assert.ok(typeof got === "number" && typeof want === "number", `${what}: ${got} vs ${want}`);
  assert.ok(Math.abs(got - want) <= rel * Math.max(Math.abs(want), 1e-6), `${what}: torch ${got}, onnx ${want}`);
}

function sameRun(what: string, torch: RunSummary, onnx: RunSummary): void {
  assert.equal(torch.steps, onnx.steps, `${what}: steps`);
  assert.equal(torch.trainable_params, onnx.trainable_params, `${what}: trainable parameters`);
  onnx.losses.forEach((l, i) => close(`${what} step ${l.step} loss`, torch.losses[i]!.loss, l.loss));
  close(`${what} training-set loss`, torch.train_loss, onnx.train_loss);
  close(`${what} held-out loss`, torch.eval_loss, onnx.eval_loss);
  if (onnx.eval_metrics) assert.deepEqual(torch.eval_metrics, onnx.eval_metrics, `${what}: held-out accuracy`);
}

for (const arch of ["llama", "roberta"] as const) {
  test(`the pipeline on the torch engine reports what it reports on the onnx engine (${arch})`, { skip }, async () => {
    const fx = makeTorchFixtures(env!, [arch])[arch];
    const dir = tmpDir();
    const data = path.join(dir, "data.jsonl");
    dataset(arch, data);
    const settings = {
      modelDir: fx.modelDir, dataPath: data, sampleFraction: 0.5, evalFraction: 0.25, threshold: 0.7, r: 4, loraAlpha: 8,
      targets: arch === "roberta" ? ["query", "value"] : ["q_proj", "v_proj"], steps: 3, sampleSteps: 2, lr: 5e-3, batchSize: 4, device: "cpu" as const,
    };
    const onnx: PipelineReport = await runPipeline({ ...settings, outDir: path.join(dir, "onnx") }, quiet);
    const torch: PipelineReport = await runPipeline({ ...settings, outDir: path.join(dir, "torch"), engine: "torch", python: env!.python, env: env!.env }, quiet);
    assert.equal(torch.device, "torch cpu float32");
    assert.equal(readProfile(path.join(dir, "torch", "profile.json")).engine, "torch");
    assert.equal(readProfile(path.join(dir, "onnx", "profile.json")).engine, "onnx");
    const d = Math.max(...onnx.importance.per_layer.map((x, i) => Math.abs(x - torch.importance.per_layer[i]!)));
    assert.ok(d <= 1e-5, `per-layer importance differs by ${d}`);
    assert.deepEqual([torch.selection.kept, torch.selection.shared], [onnx.selection.kept, onnx.selection.shared], "the same kept and shared layers");
    close("coverage", torch.selection.coverage as number, onnx.selection.coverage as number);
    assert.deepEqual(torch.params, onnx.params);
    sameRun("sample run", torch.sample_run, onnx.sample_run);
    sameRun("LoRA-drop", torch.lora_drop, onnx.lora_drop);
    sameRun("full LoRA", torch.lora!, onnx.lora!);
    close("base model held-out loss", torch.base_eval_loss, onnx.base_eval_loss);
    if (arch === "roberta") assert.deepEqual(torch.base_eval_metrics, onnx.base_eval_metrics);
  });
}

test("the pipeline over two nodes (two CLIs, one process each): node 1 ends cleanly, node 0 writes what one process writes", { skip }, async () => {
  const fx = makeTorchFixtures(env!, ["llama"]).llama;
  const dir = tmpDir();
  const data = path.join(dir, "data.jsonl");
  dataset("llama", data);
  const args = ["pipeline", "--engine", "torch", "--device", "cpu", "--model", fx.modelDir, "--data", data, "--sample-fraction", "0.5", "--eval-fraction", "0.25",
    "--threshold", "0.7", "--r", "4", "--lora-alpha", "8", "--targets", "q_proj,v_proj", "--steps", "3", "--sample-steps", "2", "--lr", "5e-3", "--batch-size", "4"];
  const one = await runPipeline({
    modelDir: fx.modelDir, dataPath: data, outDir: path.join(dir, "one"), sampleFraction: 0.5, evalFraction: 0.25, threshold: 0.7, r: 4, loraAlpha: 8,
    targets: ["q_proj", "v_proj"], steps: 3, sampleSteps: 2, lr: 5e-3, batchSize: 4, device: "cpu", engine: "torch", python: env!.python, env: env!.env,
  }, quiet);
  const port = String(await freePort());
  const node = (rank: number) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, "--out", path.join(dir, `node${rank}`), "--nnodes", "2", "--node-rank", String(rank),
      "--master-addr", "127.0.0.1", "--master-port", port], { env: { ...process.env, ...env!.env, LORA_DROP_PYTHON: env!.python } });
    let stdout = "", stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  const [zero, first] = await Promise.all([node(0), node(1)]);
  assert.equal(zero.code, 0, zero.stderr);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^node 1: done; node 0 writes the pipeline's output \(nothing was written to .*node1 here\)$/m);
  assert.equal(fs.existsSync(path.join(dir, "node1")), false, "node 1 writes nothing");
  const two = JSON.parse(fs.readFileSync(path.join(dir, "node0", "report.json"), "utf8")) as PipelineReport;
  assert.equal(two.device, "torch cpu float32");
  assert.deepEqual([two.selection.kept, two.selection.shared], [one.selection.kept, one.selection.shared]);
  sameRun("LoRA-drop, 2 nodes against 1 process", two.lora_drop, one.lora_drop);
  sameRun("full LoRA, 2 nodes against 1 process", two.lora!, one.lora!);
});
