/**
 * Quantizer speed: weights per second of blockQuant.ts (MatMulNBits layout) and columnQuant.ts (int8 per column)
 * on one TinyLlama MLP weight [5632, 2048] stored as F32, BF16 and F16, one thread, best of `--reps`; then the
 * whole bench model's projections into a fresh quantized-weight cache with 1 and with all threads (reads from the
 * page cache included), and the cache hit that follows.
 *
 * Usage: node out/scripts/bench/quantSpeed.js [--reps 3] [--cache DIR] [--spec int4,int8] [--no-cache-build]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { encodeSafetensors } from "../../extension/core/io/safetensors";
import { Rng, normalArray } from "../../extension/core/util/random";
import { quantizeStored, QuantSpec } from "../../extension/core/quant/blockQuant";
import { quantizeColumnsStored } from "./columnQuant";
import { ensureQuantized } from "../../extension/core/quant/quantCache";
import { loadHfModel } from "../../extension/core/models/hfModel";
import { ensureBenchModel, TINYLLAMA_SHAPE } from "./benchModel";
import { PRECISION_FORMATS, type QuantPrecision } from "../../extension/core/quant/quantFormats";
import { loadAverage } from "./idle";
import { moduleParent, DECODER_MODULES } from "../../extension/core/models/arch";

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      reps: { type: "string", default: "3" }, cache: { type: "string", default: ".cache" }, spec: { type: "string", default: "int4,int8" },
      "no-cache-build": { type: "boolean", default: false },
    },
  });
  console.log(`load average ${loadAverage()}; ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}`);
  const rows = 5632, cols = 2048;
  const w = normalArray(new Rng(9), rows * cols, 0.02);
  const specs = a.spec!.split(",").map((s) => ({ name: s, spec: PRECISION_FORMATS[s as QuantPrecision].spec as QuantSpec }));
  for (const dtype of ["F32", "BF16", "F16"] as const) {
    const file = encodeSafetensors([{ name: "w", dtype, shape: [rows, cols], data: w }]);
    const bytes = file.subarray(8 + Number(file.readBigUInt64LE(0)));
    const time = (f: () => void) => {
      let best = Infinity;
      for (let r = 0; r < Number(a.reps); r++) { const t = performance.now(); f(); best = Math.min(best, (performance.now() - t) / 1000); }
      return `${((rows * cols) / best / 1e6).toFixed(0)} M weights/s (${(bytes.length / best / 1e6).toFixed(0)} MB/s read)`;
    };
    for (const { name, spec } of specs) console.log(`  ${dtype} → ${name.padEnd(14)} ${time(() => quantizeStored(bytes, dtype, rows, cols, spec))}`);
    console.log(`  ${dtype} → int8 columns   ${time(() => quantizeColumnsStored(bytes, dtype, rows, cols))}`);
  }
  if (a["no-cache-build"]) return;
  const fx = ensureBenchModel(path.resolve(a.cache!, "bench"), TINYLLAMA_SHAPE, console.log);
  const model = loadHfModel(fx.modelDir);
  const names = Array.from({ length: model.config.numLayers }, (_, l) => DECODER_MODULES.map((m) => `model.layers.${l}.${moduleParent(m)}.${m}.weight`)).flat();
  const byShard = new Map<string, string[]>();
  for (const n of names) { const f = model.weights.get(n)!.index.file; byShard.set(f, [...(byShard.get(f) ?? []), n]); }
  const weights = names.reduce((s, n) => s + model.weights.get(n)!.entry.shape.reduce((x, y) => x * y, 1), 0);
  const spec = specs[0]!.spec;
  for (const threads of [1, os.cpus().length]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lora-drop-quant-speed-"));
    try {
      for (const pass of ["miss", "hit"]) {
        const t = performance.now();
        for (const [file, tensors] of byShard) await ensureQuantized({ file, tensors }, spec, { cacheDir: dir, threads });
        const s = (performance.now() - t) / 1000;
        console.log(`bench model (${(weights / 1e9).toFixed(2)} G weights, fp32) → ${specs[0]!.name}, ${threads} thread(s), cache ${pass}: ${s.toFixed(2)} s, ${(weights / s / 1e6).toFixed(0)} M weights/s`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
