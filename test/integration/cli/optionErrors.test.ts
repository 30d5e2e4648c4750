/**
 * The argument parser's refusals are input errors like any other: one line `error [INVALID_ARGUMENT]: …` naming the
 * option, exit code 2, nothing written; --help and --version still exit 0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCliInProcess } from "../../hostile/cliInProcess";
import { maxThreads } from "../../../extension/core/runtime/session";
import { makeFixture } from "../../helpers";

test("bad option values exit 2 with INVALID_ARGUMENT naming the option", async () => {
  const fx = makeFixture({ numLayers: 2, tokenizer: false }, {}, { count: 1 });
  const out = path.join(fx.root, "out");
  const train = ["train", "--model", fx.modelDir, "--data", fx.dataFile, "--out", out];
  const cases: [string[], RegExp][] = [
    [["prune", "--adapter", fx.adapterDir, "--profile", "p.json", "--out", out, "--threshold", "1.5"], /option '--threshold <t>' argument '1\.5' is invalid\. expected a number in \(0, 1\], got 1\.5/],
    [[...train, "--lr", "NaN"], /--lr <x>.*expected a number, got "NaN"/],
    [[...train, "--lr", ""], /--lr <x>.*expected a number, got ""/],
    [[...train, "--steps", "-1"], /--steps <n>.*expected a positive integer, got -1/],
    [[...train, "--batch-size", "0"], /--batch-size <n>.*expected a positive integer, got 0/],
    [[...train, "--threads", String(maxThreads() + 1)], new RegExp(`--threads <n>.*expected at most ${maxThreads()} threads`)],
    [[...train, "--warmup", "1.5"], /--warmup <n>.*non-negative integer/],
    [["pipeline", "--model", fx.modelDir, "--data", fx.dataFile, "--out", out, "--seed", "abc"], /--seed <n>.*non-negative integer, got abc/],
    [["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", ""], /^--out: the profile file path is empty/],
    [["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--out", out], /required option '--data <file>' not specified/],
    [[...train, "--frobnicate"], /unknown option '--frobnicate'/],
    [["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--precision", "int2"], /option '--precision <p>' argument 'int2' is invalid\. Allowed choices are fp32, int8, int4/],
    [["sweep", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--profile", "p.json", "--data", fx.dataFile, "--out", out, "--precision", "fp16"], /--precision <p>.*Allowed choices are fp32, int8, int4/],
    [["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--precision", "int8", "--engine", "torch"], /^--precision int8 runs on the onnx engine/],
    [["profile", "--model", fx.modelDir, "--adapter", fx.adapterDir, "--data", fx.dataFile, "--out", out, "--precision", "int4", "--criterion", "gradient"], /^--precision int4 cannot run the gradient criterion/],
    [[], /no command given; run lora-drop --help/],
  ];
  for (const [argv, re] of cases) {
    const r = await runCliInProcess(argv);
    const line = r.stderr.trim().split("\n").pop()!;
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
    assert.match(line, /^error \[INVALID_ARGUMENT\]: /, argv.join(" "));
    assert.match(line.slice("error [INVALID_ARGUMENT]: ".length), re, argv.join(" "));
    assert.equal(fs.existsSync(out), false);
  }
  for (const argv of [["--help"], ["train", "--help"], ["--version"]]) assert.equal((await runCliInProcess(argv)).code, 0, argv.join(" "));
});
