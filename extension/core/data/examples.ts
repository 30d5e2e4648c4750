/**
 * A dataset as a model sees it: read, tokenised with the model's tokenizer (or taken as token ids), truncated to
 * what the model's positions allow, sentence pairs encoded as the architecture expects, labels checked for
 * classifiers. Profiling, training, the pipeline and every engine load their examples here.
 */
import { LoraDropError, describeValue } from "../util/errors";
import type { Logger } from "../util/progress";
import type { HfModel } from "../models/hfModel";
import { pairEncoding, tokensFor } from "../models/arch";
import { readDataset, tokenizeExamples, type RawExample, type TokenizedExample } from "./dataset";
import { TextTokenizer } from "./tokenize";

/** Loads the tokenizer of a model folder, if it has one. */
export function modelTokenizer(model: HfModel): TextTokenizer | undefined {
  return model.tokenizerFile ? TextTokenizer.load(model.tokenizerFile, model.tokenizerConfigFile) : undefined;
}

/** Reads, samples and tokenises the examples of a dataset for a model. */
export function loadExamples(model: HfModel, dataPath: string, maxExamples: number, maxTokens: number): TokenizedExample[] {
  return tokenizeFor(model, dataPath, readDataset(dataPath, { maxExamples }), maxTokens);
}

/** Tokenises raw examples for a model (its tokenizer, vocabulary, position limit and pair encoding). */
export function tokenizeFor(model: HfModel, dataPath: string, raw: RawExample[], maxTokens: number): TokenizedExample[] {
  return tokenizeExamples(dataPath, raw, modelTokenizer(model), model.config.vocabSize, tokensFor(model.config, maxTokens), pairEncoding(model.config));
}

/** Reads, selects and tokenises the training examples, dropping those with no target token (with a warning). */
export function loadTrainingExamples(model: HfModel, dataPath: string, maxTokens: number, indices: number[] | undefined, log?: Logger): TokenizedExample[] {
  const raw = readDataset(dataPath);
  let picked = raw.map((_, i) => i);
  if (indices) {
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= raw.length) throw new LoraDropError("INVALID_ARGUMENT", `example index ${i} is outside the dataset's ${raw.length} examples`, dataPath, "exampleIndices");
    }
    picked = indices;
  }
  const tokenized = tokenizeFor(model, dataPath, picked.map((i) => raw[i]!), maxTokens)
    .map((e, k) => ({ ...e, example: picked[k]! }));
  if (model.config.head === "seq-cls") return checkClassLabels(dataPath, tokenized, raw, model.config.numLabels ?? 2);
  const usable = tokenized.filter((e) => e.lossMask.some((m, t) => m && t > 0));
  if (usable.length < tokenized.length) log?.warn(`${tokenized.length - usable.length} examples have no target token (too short, or a prompt with no completion after truncation) and are skipped`);
  if (usable.length === 0) throw new LoraDropError("DATASET_EMPTY", "no example has a token to predict", dataPath);
  return usable;
}

/** Checks that every example has an integer `label` in [0, numLabels); returns the examples unchanged. */
export function checkClassLabels(dataPath: string, examples: TokenizedExample[], raw: RawExample[], numLabels: number): TokenizedExample[] {
  for (const e of examples) {
    const r = raw[e.example];
    if (e.label === undefined || e.label >= numLabels) {
      const line = r ? `line ${r.line}` : `example ${e.example}`;
      throw new LoraDropError("DATASET_INVALID",
        `${line}: a sequence classifier with ${numLabels} classes needs an integer \`label\` in 0–${numLabels - 1}, got ${describeValue(r?.fields.label)}`, dataPath, line);
    }
  }
  if (examples.length === 0) throw new LoraDropError("DATASET_EMPTY", "no labelled example", dataPath);
  return examples;
}

