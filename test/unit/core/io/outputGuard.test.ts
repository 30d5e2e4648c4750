/**
 * The output guard: real paths as the kernel resolves them (symlinks, `..` after a link, outputs that do not exist
 * yet, dangling links), and the refusal of an output that is, contains or lies inside an input, or overlaps another
 * output, whatever the spelling of the paths.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { checkRunPaths, realPathOf, RunPath } from "../../../../extension/core/io/outputGuard";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { tmpDir } from "../../../helpers";

const root = fs.realpathSync(tmpDir("lora-drop-guard-"));
const model = path.join(root, "models", "tiny");
fs.mkdirSync(model, { recursive: true });
fs.writeFileSync(path.join(model, "config.json"), "{}");
const data = path.join(root, "data.jsonl");
fs.writeFileSync(data, "{}\n");
const input = (p: string, option = "--model"): RunPath => ({ path: p, role: "the model folder", option });
const output = (p: string, option = "--out"): RunPath => ({ path: p, role: "the output", option });

test("real paths follow symlinks component by component, also through parts that do not exist yet", () => {
  fs.symlinkSync(path.join(root, "models"), path.join(root, "m"));
  fs.symlinkSync("tiny", path.join(root, "models", "alias"));
  fs.symlinkSync(path.join(root, "nowhere", "deep"), path.join(root, "dangling"));
  assert.equal(realPathOf(path.join(root, "m", "alias", "config.json")), path.join(model, "config.json"));
  assert.equal(realPathOf(path.join(root, "m", "alias", "new", "file")), path.join(model, "new", "file"));
  // `..` after a symlink goes up from where the link points, as the kernel does, not from the link's folder.
  assert.equal(realPathOf(path.join(root, "m", "alias", "..", "tiny")), model);
  assert.equal(realPathOf(path.join(root, "dangling", "x")), path.join(root, "nowhere", "deep", "x"));
  const cwd = process.cwd();
  process.chdir(root);
  try {
    assert.equal(realPathOf("m/alias"), model);
  } finally {
    process.chdir(cwd);
  }
  fs.symlinkSync("loop-b", path.join(root, "loop-a"));
  fs.symlinkSync("loop-a", path.join(root, "loop-b"));
  assert.throws(() => realPathOf(path.join(root, "loop-a", "x")), (e: unknown) => e instanceof LoraDropError && /symbolic links/.test(e.message));
});

function refusal(inputs: RunPath[], outputs: RunPath[]): LoraDropError {
  try {
    checkRunPaths(inputs, outputs);
  } catch (e) {
    assert.ok(e instanceof LoraDropError);
    return e;
  }
  return assert.fail("not refused");
}

test("an output that is, contains or lies inside an input is OUTPUT_IS_INPUT, naming both paths", () => {
  const link = path.join(root, "model-link");
  fs.symlinkSync(model, link);
  for (const [out, rel] of [[model, "is"], [link, "is"], [path.dirname(model), "contains"], [path.join(link, "sub", "adapter"), "lies inside"], [path.join(model, "config.json"), "lies inside"]] as const) {
    const e = refusal([input(model)], [output(out)]);
    assert.equal(e.code, "OUTPUT_IS_INPUT");
    assert.equal(e.file, out);
    assert.ok(e.message.startsWith(`${out}: the output --out ${rel} the model folder --model ${model}`), e.message);
  }
  // A hard link to an input file is the same file under another name.
  const hard = path.join(root, "hard.jsonl");
  fs.linkSync(data, hard);
  assert.equal(refusal([input(data, "--data")], [output(hard, "--log")]).code, "OUTPUT_IS_INPUT");
});

test("outputs apart from the inputs pass; siblings that share a name prefix are apart", () => {
  checkRunPaths([input(model), input(data, "--data"), undefined], [output(path.join(root, "models", "tiny-pruned")), output(`${data}.log`, "--log"), undefined]);
  checkRunPaths([input(model)], [output(`${model}.checkpoint`, "--checkpoint-dir")]);
});

test("outputs that overlap each other, and empty paths, are INVALID_ARGUMENT naming the option", () => {
  const out = path.join(root, "out");
  const e = refusal([input(model)], [output(out), output(path.join(out, "log.jsonl"), "--log")]);
  assert.equal(e.code, "INVALID_ARGUMENT");
  assert.match(e.message, /the output --out contains the output --log/);
  for (const bad of ["", "  ", "a\0b"]) {
    const empty = refusal([input(model)], [output(bad)]);
    assert.equal(empty.code, "INVALID_ARGUMENT");
    assert.match(empty.message, /^--out: the output path is empty or not a path/);
  }
});
