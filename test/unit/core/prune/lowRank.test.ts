/**
 * The shared LoRA's initialisation (QR of the stacked factors + SVD of the small core) against a direct dense SVD
 * of the mean update on small shapes: the products must agree, and so must the singular values.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { meanLowRank, LoraFactors } from "../../../../extension/core/prune/lowRank";
import { Rng, normalArray } from "../../../../extension/core/util/random";

function randomLayers(seed: number, count: number, out: number, inF: number, r: number): LoraFactors[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => ({
    A: normalArray(rng, r * inF, 1), B: normalArray(rng, out * r, 0.5 + i), r, scale: 2 / (1 + i % 2), inFeatures: inF, outFeatures: out,
  }));
}

/** The dense mean of s_i·B_i·A_i, out×in, by plain loops in float64. */
function denseMean(layers: LoraFactors[]): Matrix {
  const { outFeatures: m, inFeatures: n } = layers[0]!;
  const M = new Matrix(m, n);
  for (const l of layers) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < l.r; k++) s += l.B[i * l.r + k]! * l.A[k * n + j]!;
        M.set(i, j, M.get(i, j) + (l.scale * s) / layers.length);
      }
    }
  }
  return M;
}

/** scale·B·A as a dense matrix. */
function product(A: Float32Array, B: Float32Array, r: number, m: number, n: number, scale: number): Matrix {
  const P = new Matrix(m, n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += B[i * r + k]! * A[k * n + j]!;
    P.set(i, j, scale * s);
  }
  return P;
}

function topR(M: Matrix, r: number): { approx: Matrix; sigma: number[] } {
  const svd = new SingularValueDecomposition(M, { autoTranspose: true });
  const U = svd.leftSingularVectors, V = svd.rightSingularVectors, s = svd.diagonal;
  const approx = new Matrix(M.rows, M.columns);
  for (let k = 0; k < Math.min(r, s.length); k++) {
    for (let i = 0; i < M.rows; i++) for (let j = 0; j < M.columns; j++) approx.set(i, j, approx.get(i, j) + U.get(i, k) * s[k]! * V.get(j, k));
  }
  return { approx, sigma: Array.from(s) };
}

function relDiff(a: Matrix, b: Matrix): number {
  return Matrix.sub(a, b).norm("frobenius") / Math.max(b.norm("frobenius"), 1e-30);
}

for (const [name, count, out, inF, r, target, scale] of [
  ["tall factors (k < out, in)", 4, 24, 20, 3, 3, 2],
  ["wide B stack (out < k)", 3, 5, 16, 3, 2, 0.5],
  ["wide A stack (in < k)", 3, 18, 4, 2, 3, 4],
  ["target rank above the mean's rank", 2, 10, 12, 1, 4, 1],
] as const) {
  test(`mean low-rank equals the dense top-r SVD: ${name}`, () => {
    const layers = randomLayers(out * 7 + inF, count, out, inF, r);
    const got = meanLowRank(layers, target, scale);
    assert.equal(got.A.length, target * inF);
    assert.equal(got.B.length, out * target);
    const dense = denseMean(layers);
    const ref = topR(dense, target);
    const err = relDiff(product(got.A, got.B, target, out, inF, scale), ref.approx);
    assert.ok(err < 1e-5, `product differs from the dense top-${target} by ${err}`);
    // The factor path sees at most k = Σ r_i singular values; the rest of the dense spectrum is zero.
    const k = count * r;
    for (let i = 0; i < Math.min(k, ref.sigma.length); i++) {
      assert.ok(Math.abs(got.singularValues[i]! - ref.sigma[i]!) <= 1e-9 * ref.sigma[0]!, `σ${i}: ${got.singularValues[i]} vs ${ref.sigma[i]}`);
    }
    for (let i = k; i < ref.sigma.length; i++) assert.ok(ref.sigma[i]! < 1e-9 * ref.sigma[0]!, "the mean has rank ≤ k");
  });
}

test("one layer with the same rank is reproduced exactly, whatever the new scale", () => {
  const [l] = randomLayers(5, 1, 9, 7, 3);
  const got = meanLowRank([l!], 3, 0.25);
  const err = relDiff(product(got.A, got.B, 3, 9, 7, 0.25), product(l!.A, l!.B, 3, 9, 7, l!.scale));
  assert.ok(err < 1e-6, `${err}`);
});

test("the singular values are split evenly between the factors", () => {
  const layers = randomLayers(9, 3, 12, 10, 2);
  const got = meanLowRank(layers, 2, 1);
  for (let j = 0; j < 2; j++) {
    let nb = 0, na = 0;
    for (let i = 0; i < 12; i++) nb += got.B[i * 2 + j]! ** 2;
    for (let i = 0; i < 10; i++) na += got.A[j * 10 + i]! ** 2;
    // ‖B[:, j]‖² = ‖A[j, :]‖² = σ_j when the scale is 1.
    assert.ok(Math.abs(nb - got.singularValues[j]!) < 1e-4 * got.singularValues[j]!, `B column ${j}`);
    assert.ok(Math.abs(na - got.singularValues[j]!) < 1e-4 * got.singularValues[j]!, `A row ${j}`);
  }
});

test("all-zero updates give a zero pair, not NaN", () => {
  const layers = randomLayers(3, 2, 6, 5, 2).map((l) => ({ ...l, B: new Float32Array(l.B.length) }));
  const got = meanLowRank(layers, 2, 1);
  assert.ok(got.A.every((v) => v === 0) && got.B.every((v) => v === 0));
});

test("mismatched shapes and a zero scale are refused", () => {
  const [a] = randomLayers(1, 1, 6, 5, 2);
  const [b] = randomLayers(2, 1, 6, 4, 2);
  assert.throws(() => meanLowRank([a!, b!], 2, 1), /same shape/);
  assert.throws(() => meanLowRank([a!], 2, 0), /scale/);
  assert.throws(() => meanLowRank([], 2, 1), /at least one/);
});
