/**
 * Hostile runs for the corpus (see generate.ts): special files (FIFOs, devices, sockets, folders) in the place of
 * every file the tools read; outputs that are, contain or lie inside the run's inputs, directly and through
 * symlinks, with and without --force; logs and checkpoint folders that cannot be written or must not be replaced;
 * option values the CLI must refuse; damaged checkpoints; training that would write non-finite weights; a gradient
 * profile with nothing to predict. Kinds, values and positions are drawn from the seed.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { ErrorCode } from "../../extension/core/util/errors";
import { pruneAdapter } from "../../extension/core/prune/prune";
import { trainLora } from "../../extension/core/train/train";
import { RECORD_FILE } from "../../extension/core/adapter/dropRecord";
import { HostileCase, cloneDir, CaseWriter, EntryPoint, poke } from "./corpus";
import { pick, toJson } from "./stMutate";

type Json = Record<string, unknown>;

/** Pruned forms of the base adapter and a checkpoint of a short run, which later cases start from. */
export async function reliabilityBases(w: CaseWriter): Promise<void> {
  const { bases } = w;
  const root = path.join(path.dirname(bases.modelDir), "reliability");
  const prune = async (name: string, o: Json) => {
    const outDir = path.join(root, name);
    await pruneAdapter({ adapterDir: bases.adapterDir, profile: bases.profileFile!, outDir, modelDir: bases.modelDir, keep: 1, ...o });
    return outDir;
  };
  bases.pruned = { share: await prune("share", {}), compact: await prune("compact", { format: "compact" }), drop: await prune("drop", { mode: "drop" }) };
  const options = { modelDir: bases.modelDir, dataPath: bases.idsData, steps: 3, batchSize: 2, lr: 1e-3, seed: 7, checkpointEvery: 1, device: "cpu", threads: 1 };
  const dir = path.join(root, "checkpoint");
  await trainLora({ ...options, outDir: path.join(root, "trained"), checkpointDir: dir } as Parameters<typeof trainLora>[0]);
  bases.checkpoint = { dir, options };
}

let sockets = 0;

/** Makes `file` a special file of `kind`. */
async function makeSpecial(kind: string, file: string): Promise<void> {
  fs.rmSync(file, { recursive: true, force: true });
  if (kind === "fifo") {
    const r = spawnSync("mkfifo", [file]);
    if (r.status !== 0) throw new Error(`mkfifo ${file} failed: ${r.stderr}`);
  } else if (kind === "/dev/zero" || kind === "/dev/null") fs.symlinkSync(kind, file);
  else if (kind === "folder") fs.mkdirSync(file);
  else if (kind === "socket") {
    // A listening socket's file goes when the server closes; a hard link to it stays, a socket nobody listens on.
    // Socket paths are limited to about 100 bytes: listen on a short one in the same file system, then link.
    const tmp = path.join(os.tmpdir(), `ld-sock-${process.pid}-${++sockets}`);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(tmp, resolve));
    fs.linkSync(tmp, file);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A resumed run of the base checkpoint, copied into `dir`. */
function resumeOptions(w: CaseWriter, dir: string): Json {
  return { ...w.bases.checkpoint!.options, outDir: path.join(dir, "out"), checkpointDir: path.join(dir, "ckpt"), resume: true };
}

/** Every file a tool reads, replaced by a FIFO, a device, a socket or a folder: refused at once, never waited on. */
export async function specialFileCases(w: CaseWriter): Promise<void> {
  const { bases, rng } = w;
  interface Target { name: string; from: string; file: string; entry: EntryPoint; extra?: (dir: string) => Partial<HostileCase> }
  const targets: Target[] = [
    { name: "config", from: bases.modelDir, file: "config.json", entry: "model", extra: (d) => ({ modelDir: d }) },
    { name: "weights", from: bases.modelDir, file: "model.safetensors", entry: "model", extra: (d) => ({ modelDir: d }) },
    { name: "shard-index", from: bases.shardedDir, file: "model.safetensors.index.json", entry: "model", extra: (d) => ({ modelDir: d }) },
    { name: "adapter-config", from: bases.adapterDir, file: "adapter_config.json", entry: "adapter", extra: (d) => ({ modelDir: bases.modelDir, adapterDir: d }) },
    { name: "adapter-weights", from: bases.adapterDir, file: "adapter_model.safetensors", entry: "adapter", extra: (d) => ({ modelDir: bases.modelDir, adapterDir: d }) },
    { name: "record", from: bases.pruned!.share, file: RECORD_FILE, entry: "adapter", extra: (d) => ({ modelDir: bases.modelDir, adapterDir: d }) },
    { name: "tokenizer", from: bases.tokModelDir, file: "tokenizer.json", entry: "run", extra: (d) => ({ modelDir: d, adapterDir: bases.tokAdapterDir, dataFile: bases.textData, criterion: "weight" }) },
    { name: "tokenizer-config", from: bases.tokModelDir, file: "tokenizer_config.json", entry: "run", extra: (d) => ({ modelDir: d, adapterDir: bases.tokAdapterDir, dataFile: bases.textData, criterion: "weight" }) },
    { name: "dataset", from: "", file: "data.jsonl", entry: "dataset", extra: () => ({ vocabSize: bases.config.vocabSize }) },
    { name: "profile", from: "", file: "profile.json", entry: "profile" },
    { name: "checkpoint-state", from: bases.checkpoint!.dir, file: "state.json", entry: "train" },
    { name: "checkpoint-tensors", from: bases.checkpoint!.dir, file: "tensors.safetensors", entry: "train" },
  ];
  for (const t of targets) {
    for (const kind of ["fifo", "/dev/zero", pick(rng, ["socket", "folder", "/dev/null"])]) {
      const { id, dir } = w.next(`special-${t.name}`);
      const home = t.entry === "train" ? path.join(dir, "ckpt") : dir;
      if (t.from) cloneDir(t.from, home);
      const file = path.join(home, t.file);
      await makeSpecial(kind, file);
      const c: HostileCase = {
        id, category: "special", family: t.name, note: `${t.file} is ${kind === "fifo" ? "a FIFO" : kind.startsWith("/dev") ? `a symlink to ${kind}` : `a ${kind}`}`,
        entry: t.entry, file, expect: "FILE_UNREADABLE", names: file, inputs: [dir], ...(kind === "/dev/zero" ? { lowMemory: true } : {}), ...t.extra?.(dir),
      };
      if (t.entry === "train") c.options = resumeOptions(w, dir);
      w.add(c);
    }
  }
}

/** Copies of the base inputs in a case folder: what output cases point their outputs at. */
function inputsIn(w: CaseWriter, dir: string): { model: string; adapter: string; data: string; profile: string } {
  const r = { model: path.join(dir, "model"), adapter: path.join(dir, "adapter"), data: path.join(dir, "data.jsonl"), profile: path.join(dir, "profile.json") };
  fs.cpSync(w.bases.modelDir, r.model, { recursive: true });
  fs.cpSync(w.bases.adapterDir, r.adapter, { recursive: true });
  fs.copyFileSync(w.bases.idsData, r.data);
  fs.copyFileSync(w.bases.profileFile!, r.profile);
  return r;
}

/** Outputs that are, contain or lie inside an input, directly or through a symlink, with and without --force. */
export async function outputCases(w: CaseWriter): Promise<void> {
  const { rng } = w;
  type Inputs = ReturnType<typeof inputsIn>;
  const commands: { cmd: string; outputs: string[]; inputs: (keyof Inputs)[]; argv: (i: Inputs) => string[] }[] = [
    { cmd: "profile", outputs: ["--out"], inputs: ["model", "adapter", "data"], argv: (i) => ["--model", i.model, "--adapter", i.adapter, "--data", i.data] },
    { cmd: "prune", outputs: ["--out"], inputs: ["adapter", "profile", "model"], argv: (i) => ["--adapter", i.adapter, "--profile", i.profile, "--model", i.model] },
    { cmd: "train", outputs: ["--out", "--log", "--checkpoint-dir"], inputs: ["model", "data", "adapter"], argv: (i) => ["--model", i.model, "--data", i.data, "--adapter", i.adapter, "--steps", "1"] },
    { cmd: "pipeline", outputs: ["--out"], inputs: ["model", "data"], argv: (i) => ["--model", i.model, "--data", i.data, "--steps", "1", "--sample-steps", "1"] },
  ];
  const ways = ["is", "symlink", "contains", "inside", "symlinked parent"] as const;
  for (let k = 0; k < 24; k++) {
    const c = pick(rng, commands);
    const option = pick(rng, c.outputs);
    const role = pick(rng, c.inputs);
    const way = pick(rng, ways);
    const force = rng.next() < 0.5;
    const { id, dir } = w.next(`output-${c.cmd}`);
    const i = inputsIn(w, dir);
    let out = i[role];
    if (way === "symlink") { out = path.join(dir, "link"); fs.symlinkSync(i[role], out); }
    if (way === "contains") out = dir;
    if (way === "inside") out = path.join(i[role], "sub", "out");
    if (way === "symlinked parent") { fs.symlinkSync(path.dirname(i[role]), path.join(dir, "parent-link")); out = path.join(dir, "parent-link", path.basename(i[role])); }
    // The other outputs of the run go somewhere harmless; the one under test is the input.
    const others = option === "--out" ? [] : ["--out", path.join(dir, "new-out")];
    const argv = [c.cmd, ...c.argv(i), ...others, option, out, "--quiet", ...(c.cmd === "prune" ? [] : ["--device", "cpu"]), ...(force ? ["--force"] : [])];
    w.add({ id, category: "output", family: `${c.cmd} ${option}`, note: `${option} ${way === "is" ? "is" : way} ${role}${force ? " (--force)" : ""}`, entry: "cli", argv, expect: "OUTPUT_IS_INPUT", names: out, inputs: [dir] });
  }
  const writeCases: [string, ErrorCode, (dir: string) => Promise<string> | string, string][] = [
    ["--log", "WRITE_FAILED", (d) => { fs.mkdirSync(path.join(d, "log-folder")); return path.join(d, "log-folder"); }, "--log is a folder"],
    ["--log", "WRITE_FAILED", async (d) => { await makeSpecial("fifo", path.join(d, "log.fifo")); return path.join(d, "log.fifo"); }, "--log is a FIFO nobody reads"],
    ["--log", "WRITE_FAILED", (d) => { fs.symlinkSync("/dev/full", path.join(d, "log.jsonl")); return path.join(d, "log.jsonl"); }, "--log is a symlink to /dev/full"],
    ["--checkpoint-dir", "OUTPUT_EXISTS", (d) => { fs.mkdirSync(path.join(d, "photos")); fs.writeFileSync(path.join(d, "photos", "holiday.jpg"), "the user's file"); return path.join(d, "photos"); }, "--checkpoint-dir is a folder of other files"],
    ["--checkpoint-dir", "OUTPUT_EXISTS", (d) => { fs.writeFileSync(path.join(d, "notes.txt"), "the user's file"); return path.join(d, "notes.txt"); }, "--checkpoint-dir is a file"],
  ];
  for (const [option, expect, make, note] of writeCases) {
    const { id, dir } = w.next(`output-train-${option.slice(2)}`);
    const i = inputsIn(w, dir);
    const target = await make(dir);
    w.add({ id, category: "output", family: `train ${option}`, note, entry: "cli", expect, names: target, inputs: [i.model, i.data, i.adapter],
      argv: ["train", "--model", i.model, "--data", i.data, "--out", path.join(dir, "new-out"), "--steps", "1", "--checkpoint-every", "1", option, target, "--quiet", "--device", "cpu"] });
  }
}

/** Option values the CLI must refuse with INVALID_ARGUMENT (or, for a missing field, the dataset's error). */
export function optionCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const model = bases.modelDir, adapter = bases.adapterDir, data = bases.idsData, profile = bases.profileFile!;
  const base: Record<string, string[]> = {
    profile: ["profile", "--model", model, "--adapter", adapter, "--data", data, "--out", "OUT/p.json"],
    prune: ["prune", "--adapter", adapter, "--profile", profile, "--model", model, "--out", "OUT/pruned"],
    train: ["train", "--model", model, "--data", data, "--out", "OUT/adapter", "--steps", "1"],
    pipeline: ["pipeline", "--model", model, "--data", data, "--out", "OUT/run", "--steps", "1", "--sample-steps", "1"],
  };
  const add = (cmd: string, note: string, extra: string[], names: string, expect: ErrorCode = "INVALID_ARGUMENT", replaceOut?: string): void => {
    const { id, dir } = w.next(`options-${cmd}`);
    let argv = base[cmd]!.map((a) => a.replace("OUT", dir));
    if (replaceOut !== undefined) argv = argv.map((a, k) => (argv[k - 1] === "--out" ? replaceOut : a));
    w.add({ id, category: "options", family: cmd, note, entry: "cli", argv: [...argv, ...extra, "--quiet", ...(cmd === "prune" ? [] : ["--device", "cpu"])], expect, names, inputs: [dir, model, adapter, data] });
  };
  for (const v of sampleOf(rng, ["1.5", "0", "-0.2", "abc", "NaN", "", "Infinity"], 3)) add("prune", `--threshold ${JSON.stringify(v)}`, ["--threshold", v], "--threshold");
  for (const v of sampleOf(rng, ["NaN", "Infinity", "", "abc", "1e", "0x"], 3)) add("train", `--lr ${JSON.stringify(v)}`, ["--lr", v], "--lr");
  add("train", "--lr -1", ["--lr", "-1"], "lr");
  for (const v of sampleOf(rng, ["-1", "0", "1.5", "x", ""], 2)) add("train", `--steps ${JSON.stringify(v)}`, ["--steps", v], "--steps");
  for (const v of sampleOf(rng, ["0", "-3", "2x"], 2)) add(pick(rng, ["train", "profile", "pipeline"]), `--batch-size ${v}`, ["--batch-size", v], "--batch-size");
  for (const v of sampleOf(rng, ["100000", "0", "-1", "1e9", "2.5"], 3)) add(pick(rng, ["train", "profile", "pipeline"]), `--threads ${v}`, ["--threads", v], "--threads");
  for (const cmd of Object.keys(base)) add(cmd, "--out \"\"", [], "--out", "INVALID_ARGUMENT", "");
  add("pipeline", "--seed -1", ["--seed", "-1"], "--seed");
  add("pipeline", "--warmup-steps 1.5", ["--warmup-steps", "1.5"], "--warmup-steps");
  add("profile", "--max-tokens 0", ["--max-tokens", "0"], "--max-tokens");
  add(pick(rng, Object.keys(base)), "an unknown option", [`--frob${rng.int(100)}`], "--frob");
  add("pipeline", "--stratify-by a field no record has", ["--stratify-by", `field${rng.int(1000)}`], data, "DATASET_INVALID");
}

/** Checkpoints whose state or optimiser moments are damaged: a resumed run refuses them before it trains. */
export function checkpointCases(w: CaseWriter): void {
  const { rng, bases } = w;
  const state = JSON.parse(fs.readFileSync(path.join(bases.checkpoint!.dir, "state.json"), "utf8")) as Json;
  const n = (state.order as number[]).length;
  const fields: [string, unknown][] = [["step", null], ["step", "2"], ["step", -1], ["step", 99], ["totalSteps", 0], ["fingerprint", null], ["dataRng", -1], ["dataRng", 2 ** 33],
    ["dataRng", 1.5], ["dropoutRng", "x"], ["epoch", -1], ["order", null], ["order", new Array(n).fill(0)], ["order", [...(state.order as number[]).slice(1), n]], ["order", []],
    ["position", n + 1], ["position", -1], ["adamStep", 7], ["losses", "x"], ["losses", [{ step: 1, loss: "NaN", lr: 0.001 }]], ["tokens", -5], ["tokens", null], ["version", 2],
    ["order", Array.from({ length: n + 2 }, (_, i) => i)]];
  for (const [k, v] of sampleOf(rng, fields, 14)) {
    const { id, dir } = w.next("checkpoint-state");
    cloneDir(bases.checkpoint!.dir, path.join(dir, "ckpt"));
    const file = path.join(dir, "ckpt", "state.json");
    fs.rmSync(file);
    fs.writeFileSync(file, toJson({ ...state, [k]: v }));
    w.add({ id, category: "checkpoint", family: "state", note: `${k}: ${JSON.stringify(v)?.slice(0, 40)}`, entry: "train", options: resumeOptions(w, dir), expect: "CONFIG_INVALID", names: file, inputs: [bases.modelDir, bases.idsData] });
  }
  const moments: [string, (name: string) => boolean, number, ErrorCode, "tensors" | "data"][] = [
    ["a negative second moment", (x) => x.startsWith("adam.v."), -1, "NUMERICAL", "tensors"],
    ["NaN in a first moment", (x) => x.startsWith("adam.m."), NaN, "NUMERICAL", "tensors"],
    ["Inf in a LoRA value", (x) => x.startsWith("param."), Infinity, "NUMERICAL", "tensors"],
    ["-Inf in a second moment", (x) => x.startsWith("adam.v."), -Infinity, "NUMERICAL", "tensors"],
  ];
  for (const [note, which, value, expect, names] of moments) {
    const { id, dir } = w.next("checkpoint-moments");
    cloneDir(bases.checkpoint!.dir, path.join(dir, "ckpt"));
    const st = path.join(dir, "ckpt", "tensors.safetensors");
    const { bytes, name } = poke(fs.readFileSync(st), which, value, rng);
    fs.rmSync(st);
    fs.writeFileSync(st, bytes);
    w.add({ id, category: "checkpoint", family: "moments", note: `${note} (${name})`, entry: "train", options: resumeOptions(w, dir), expect, names: names === "tensors" ? st : bases.idsData, inputs: [bases.modelDir, bases.idsData] });
  }
}

/** Training that would write Inf/NaN weights, and a gradient profile with no token to predict. */
export function numericalCases(w: CaseWriter): void {
  const { rng, bases } = w;
  for (const lr of sampleOf(rng, [1e39, 1e45, 1e100, 1e300], 3)) {
    const { id, dir } = w.next("train-huge-lr");
    const options = { ...bases.checkpoint!.options, lr, checkpointEvery: 1, outDir: path.join(dir, "out"), checkpointDir: path.join(dir, "ckpt") };
    w.add({ id, category: "train", family: "huge-lr", note: `lr ${lr}`, entry: "train", options, expect: "NUMERICAL", names: bases.idsData, inputs: [bases.modelDir, bases.idsData] });
  }
  for (let k = 0; k < 2; k++) {
    const { id, dir } = w.next("train-one-token");
    const file = path.join(dir, "one-token.jsonl");
    fs.writeFileSync(file, Array.from({ length: 2 + rng.int(6) }, () => JSON.stringify({ input_ids: [rng.int(bases.config.vocabSize)] })).join("\n") + "\n");
    w.add({ id, category: "train", family: "one-token-gradient", note: "a gradient profile of one-token examples", entry: "run", criterion: "gradient" as HostileCase["criterion"],
      modelDir: bases.modelDir, adapterDir: bases.adapterDir, dataFile: file, expect: "DATASET_INVALID", names: file, inputs: [file] });
  }
  const { id } = w.next("train-threads");
  w.add({ id, category: "train", family: "threads", note: "threads 100000 through the engine", entry: "train", options: { ...bases.checkpoint!.options, threads: 100_000, outDir: path.join(w.root, "cases", id, "out") }, expect: "INVALID_ARGUMENT", names: "threads" });
}

function sampleOf<T>(rng: CaseWriter["rng"], a: readonly T[], n: number): T[] {
  return rng.shuffle([...a]).slice(0, n);
}
