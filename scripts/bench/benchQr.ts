/**
 * Times the QR that prune's shared-LoRA initialisation (lowRank.ts) runs twice per module, at Llama-2-7B widths:
 * a 4096×k and an 11008×k stack of factors (k = Σ r_i, 256 for 32 layers of rank 8). Compares ml-matrix's
 * QrDecomposition with its explicit Q (what lowRank.ts used before) against householderQr.ts with Q applied to
 * the r columns the result needs, then times the whole meanLowRank per module shape.
 *
 * Usage: npm run bench:qr -- [--k 256] [--r 8] [--reps 1] [--no-ml-matrix] [--json FILE]
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { benchHeader } from "./machine";
import { Matrix, QrDecomposition } from "ml-matrix";
import { colMajorZeros, HouseholderQr } from "../../extension/core/prune/householderQr";
import { LoraFactors, meanLowRank } from "../../extension/core/prune/lowRank";
import { Rng, normalArray } from "../../extension/core/util/random";

/** Best of `reps` wall times, in seconds. */
function timeIt(reps: number, f: () => void): number {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    f();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

function main(): void {
  const header = benchHeader("qr", "npm run bench:qr");
  const { values: a } = parseArgs({ options: {
    k: { type: "string", default: "256" }, r: { type: "string", default: "8" }, reps: { type: "string", default: "1" },
    "no-ml-matrix": { type: "boolean", default: false }, json: { type: "string" },
  } });
  const qr: { rows: number; k: number; householderSeconds: number; mlMatrixSeconds?: number }[] = [];
  const modules: { module: string; out: number; in: number; layers: number; r: number; seconds: number }[] = [];
  const k = Number(a.k), r = Number(a.r), reps = Number(a.reps);
  console.log(`QR of rows×${k} (float64), best of ${reps}; Q applied to ${r} columns`);
  for (const rows of [4096, 11008]) {
    const values = normalArray(new Rng(rows), rows * k, 1);
    const col = colMajorZeros(rows, k);
    for (let j = 0; j < k; j++) for (let i = 0; i < rows; i++) col.data[j * rows + i] = values[i * k + j]!;
    const x = colMajorZeros(k, r);
    for (let j = 0; j < r; j++) x.data[j * k + j] = 1;
    const ours = timeIt(reps, () => new HouseholderQr(col).applyQ(x));
    qr.push({ rows, k, householderSeconds: ours });
    let line = `${`${rows}×${k}`.padEnd(10)} householderQr ${ours.toFixed(2)} s`;
    if (!a["no-ml-matrix"]) {
      const m = new Matrix(rows, k);
      for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) m.set(i, j, values[i * k + j]!);
      const theirs = timeIt(reps, () => { const qr = new QrDecomposition(m); qr.orthogonalMatrix; qr.upperTriangularMatrix; });
      qr[qr.length - 1]!.mlMatrixSeconds = theirs;
      line += `, ml-matrix QrDecomposition + Q ${theirs.toFixed(2)} s (${(theirs / ours).toFixed(1)}×)`;
    }
    console.log(line);
  }
  const layers = k / r;
  for (const [name, out, inF] of [["q_proj", 4096, 4096], ["gate_proj", 11008, 4096]] as const) {
    const rng = new Rng(out + inF);
    const group: LoraFactors[] = Array.from({ length: layers }, () => ({
      A: normalArray(rng, r * inF, 0.01), B: normalArray(rng, out * r, 0.01), r, scale: 2, inFeatures: inF, outFeatures: out,
    }));
    const t = timeIt(reps, () => meanLowRank(group, r, 2));
    console.log(`meanLowRank ${name} (${out}×${inF}, ${layers} layers of rank ${r}): ${t.toFixed(2)} s per module`);
    modules.push({ module: name, out, in: inF, layers, r, seconds: t });
  }
  if (a.json) {
    fs.writeFileSync(a.json, `${JSON.stringify({ ...header, reps, qr, modules }, null, 2)}\n`);
    console.log(`wrote ${a.json}`);
  }
}

main();
