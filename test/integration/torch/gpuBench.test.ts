/**
 * The GPU benchmark script (scripts/bench/gpu_bench.py) end to end in its dry-run mode: a tiny Llama on the CPU,
 * the torch engine's profile and training beside a plain PEFT loop, and the JSON it writes (machine, date, both
 * sides' throughput and their ratio). What it measures on a GPU is only meaningful there; this keeps it working.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, torchEnvOrSkip } from "../../torchEnv";
import { tmpDir } from "../../helpers";

const { env, skip } = torchEnvOrSkip();

test("gpu_bench.py --dry-run: the engine and a plain PEFT loop on a tiny model, in one JSON report", { skip }, () => {
  const dir = tmpDir();
  const json = path.join(dir, "report.json");
  const r = spawnSync(env!.python, [path.join(REPO_ROOT, "scripts", "bench", "gpu_bench.py"), "--dry-run", "--cache", path.join(dir, "cache"), "--json", json],
    { env: { ...process.env, ...env!.env }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(fs.readFileSync(json, "utf8"));
  assert.equal(report.shape, "tiny");
  assert.ok(!Number.isNaN(Date.parse(report.date)), "dated");
  assert.ok(report.machine.torch && report.machine.transformers && report.machine.peft, "the library versions are recorded");
  for (const kind of ["profile", "train"]) {
    const x = report.results[kind];
    assert.ok(x.engine_tokens_per_second > 0 && x.plain_peft_tokens_per_second > 0, kind);
    assert.equal(x.engine.times.length, 2, `${kind}: two timed batches after the warm-up`);
    assert.ok(Math.abs(x.ratio - x.engine_tokens_per_second / x.plain_peft_tokens_per_second) < 1e-12);
  }
  assert.match(r.stdout, /^profile +torch engine .* ratio \d/m);
});
