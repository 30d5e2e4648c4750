/**
 * Runs hostile cases through the engine's public entry points. Forked by the harness as a child process (so that a
 * crash, a hang or a huge allocation is observed from outside instead of taking the test runner down with it): it
 * receives one case at a time over IPC and answers with what the engine threw, how long it took and the process's
 * peak memory.
 */
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { LoraDropError } from "../../extension/core/util/errors";
import { readSafetensorsIndex, readTensorF32 } from "../../extension/core/io/safetensors";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { readDataset, tokenizeExamples } from "../../extension/core/data/dataset";
import { readProfile } from "../../extension/core/importance/profileFile";
import { profileAdapter } from "../../extension/core/importance/profile";
import { TextTokenizer } from "../../extension/core/data/tokenize";
import { pruneAdapter, PruneOptions } from "../../extension/core/prune/prune";
import { trainLora } from "../../extension/core/train/train";
import { TrainOptions } from "../../extension/core/train/settings";
import { HostileCase } from "./corpus";
import { cliError, runCliInProcess } from "./cliInProcess";
import { inputsDigest } from "./inputsDigest";

/** What a case did. */
export interface CaseOutcome {
  id: string;
  /** rejected: a LoraDropError; accepted: no error; threw: anything else (a bug); modified: an input changed. */
  kind: "rejected" | "accepted" | "threw" | "modified";
  code?: string;
  message?: string;
  file?: string;
  ms: number;
  /** Peak resident memory of the runner process so far (kB). */
  maxRssKb: number;
}

const tokenizers = new Map<string, TextTokenizer>();

function tokenizerOf(modelDir: string): TextTokenizer {
  let t = tokenizers.get(modelDir);
  if (!t) {
    t = TextTokenizer.load(path.join(modelDir, "tokenizer.json"), path.join(modelDir, "tokenizer_config.json"));
    tokenizers.set(modelDir, t);
  }
  return t;
}

/** Feeds a case to its entry point; resolves when the engine accepts it, rejects with whatever it threw. */
export async function runEntry(c: HostileCase): Promise<void> {
  switch (c.entry) {
    case "safetensors": {
      const idx = readSafetensorsIndex(c.file!);
      for (const name of idx.tensors.keys()) readTensorF32(idx, name);
      return;
    }
    case "model":
      loadHfModel(c.modelDir!);
      return;
    case "adapter":
      loadAdapter(c.adapterDir!, loadHfModel(c.modelDir!).config);
      return;
    case "dataset": {
      const raw = readDataset(c.file!, { maxExamples: 64 });
      tokenizeExamples(c.file!, raw, c.tokenizerModelDir ? tokenizerOf(c.tokenizerModelDir) : undefined, c.vocabSize!, 128);
      return;
    }
    case "profile":
      readProfile(c.file!);
      return;
    case "run":
      await profileAdapter({ modelDir: c.modelDir!, adapterDir: c.adapterDir!, dataPath: c.dataFile!, criterion: c.criterion, maxExamples: 4, maxTokens: 16, device: "cpu", threads: 1 });
      return;
    case "prune":
      await pruneAdapter(c.options as unknown as PruneOptions);
      return;
    case "train":
      await trainLora(c.options as unknown as TrainOptions);
      return;
    case "cli": {
      const r = await runCliInProcess(c.argv!);
      if (r.code === 0) return;
      const e = cliError(r.stderr);
      // Exit 2 with one typed line is a refusal; anything else (an internal error, exit 1) is a bug.
      if (r.code === 2 && e) throw new LoraDropError(e.code as LoraDropError["code"], e.message);
      throw new Error(`exit ${r.code}: ${r.stderr.slice(0, 2000)}`);
    }
  }
}

/** Runs one case and describes the outcome. */
export async function runCase(c: HostileCase): Promise<CaseOutcome> {
  const t0 = performance.now();
  let o: Pick<CaseOutcome, "kind" | "code" | "message" | "file">;
  const before = inputsDigest(c.inputs ?? []);
  try {
    await runEntry(c);
    o = { kind: "accepted" };
  } catch (e) {
    o = e instanceof LoraDropError
      ? { kind: "rejected", code: e.code, message: e.message, file: e.file }
      : { kind: "threw", message: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e) };
  }
  const after = inputsDigest(c.inputs ?? []);
  const changed = Object.keys({ ...before, ...after }).filter((k) => before[k] !== after[k]);
  if (changed.length) o = { kind: "modified", message: `inputs changed: ${changed.slice(0, 5).join(", ")} (${o.kind}: ${o.message ?? ""})` };
  return { id: c.id, ...o, ms: performance.now() - t0, maxRssKb: process.resourceUsage().maxRSS };
}

// As a forked child: answer cases until the parent disconnects.
if (require.main === module && process.send) {
  process.on("message", (c: HostileCase) => {
    void runCase(c).then((o) => process.send!(o));
  });
  process.send({ ready: true, maxRssKb: process.resourceUsage().maxRSS });
}
