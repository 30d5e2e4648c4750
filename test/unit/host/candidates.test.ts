/**
 * What the pickers offer from the workspace: model folders, adapter folders, datasets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyCandidates, rememberedFirst } from "../../../extension/host/candidates";

test("workspace candidates: model folders, adapter folders, datasets", () => {
  const files = [
    "/w/model/config.json", "/w/model/model.safetensors", "/w/model/tokenizer.json",
    "/w/cfg-only/config.json",
    "/w/ad/adapter_config.json", "/w/ad/adapter_model.safetensors", "/w/ad/config.json",
    "/w/data/train.txt", "/w/data/train.jsonl", "/w/model/merges.txt", "/w/tok/vocab.txt", "/w/.lora-drop/sample.jsonl",
  ];
  const c = classifyCandidates(files, ["/w/.lora-drop"]);
  assert.deepEqual(c.models, ["/w/model"]);
  assert.deepEqual(c.adapters, ["/w/ad"]);
  assert.deepEqual(c.datasets, ["/w/data/train.jsonl", "/w/data/train.txt"]);
  assert.deepEqual(rememberedFirst(["/a", "/b", "/c"], "/c"), ["/c", "/a", "/b"]);
  assert.deepEqual(rememberedFirst(["/a"], "/gone"), ["/a"]);
  assert.deepEqual(rememberedFirst(["/a"], "/elsewhere", true), ["/elsewhere", "/a"]);
});
