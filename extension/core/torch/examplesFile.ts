/**
 * The tokenised examples handed to the Python engine. Tokenisation stays on the Node side, so both engines see the
 * same token ids from the same tokenizer. One JSON object per line: `{"ids": [...]}` plus, where they carry
 * information, `label` (classifiers), `type_ids` (a BERT sentence pair's segments) and `loss_mask` (0/1 per token:
 * the causal-LM targets, written only when they are not simply every token after the first). JSON lines rather than
 * a binary format: a few bytes per token is nothing beside a model run, and the file stays readable when a run
 * needs explaining.
 */
import * as fs from "node:fs";
import type { TokenizedExample } from "../data/dataset";

/** Writes examples, in order (the engine refers to them by line index). */
export function writeExamplesFile(file: string, examples: TokenizedExample[]): void {
  const lines = examples.map((e) => {
    const o: Record<string, unknown> = { ids: e.ids };
    if (e.label !== undefined) o.label = e.label;
    if (e.typeIds) o.type_ids = e.typeIds;
    if (!e.lossMask.every((m, t) => m === t > 0)) o.loss_mask = e.lossMask.map((m) => (m ? 1 : 0));
    return JSON.stringify(o);
  });
  fs.writeFileSync(file, lines.join("\n") + "\n");
}
