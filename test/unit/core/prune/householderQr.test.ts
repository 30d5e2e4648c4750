/**
 * The Householder QR behind the shared LoRA's initialisation: Q has orthonormal columns, Q·R reproduces the
 * input, R is upper triangular, on tall, wide and rank-deficient (zero and repeated columns) matrices.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ColMajor, colMajorZeros, HouseholderQr } from "../../../../extension/core/prune/householderQr";
import { Rng, normalArray } from "../../../../extension/core/util/random";

function randomMatrix(seed: number, rows: number, cols: number, scale = 1): ColMajor {
  const a = colMajorZeros(rows, cols);
  const v = normalArray(new Rng(seed), rows * cols, 1);
  for (let i = 0; i < v.length; i++) a.data[i] = v[i]! * scale;
  return a;
}

function frobenius(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}

/** max |QᵀQ − I| over all entries. */
function orthonormalityError(q: ColMajor): number {
  let worst = 0;
  for (let a = 0; a < q.cols; a++) {
    for (let b = 0; b < q.cols; b++) {
      let s = 0;
      for (let i = 0; i < q.rows; i++) s += q.data[a * q.rows + i]! * q.data[b * q.rows + i]!;
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

/** ‖Q·R − A‖_F / ‖A‖_F (absolute when A is zero). */
function reconstructionError(qr: HouseholderQr, a: ColMajor): number {
  const q = qr.q(), r = qr.r();
  const diff = new Float64Array(a.rows * a.cols);
  for (let j = 0; j < a.cols; j++) {
    for (let i = 0; i < a.rows; i++) {
      let s = 0;
      for (let c = 0; c < r.rows; c++) s += q.data[c * q.rows + i]! * r.data[j * r.rows + c]!;
      diff[j * a.rows + i] = s - a.data[j * a.rows + i]!;
    }
  }
  const norm = frobenius(a.data);
  return frobenius(diff) / (norm > 0 ? norm : 1);
}

function checkQr(a: ColMajor, label: string): HouseholderQr {
  const copy = Float64Array.from(a.data);
  const qr = new HouseholderQr(a);
  assert.deepEqual(a.data, copy, `${label}: the input is left as it was`);
  const p = Math.min(a.rows, a.cols);
  const q = qr.q(), r = qr.r();
  assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [a.rows, p, p, a.cols], `${label}: thin shapes`);
  const orth = orthonormalityError(q);
  assert.ok(orth < 1e-12, `${label}: |QᵀQ − I| = ${orth}`);
  const rec = reconstructionError(qr, a);
  assert.ok(rec < 1e-12, `${label}: ‖QR − A‖/‖A‖ = ${rec}`);
  for (let j = 0; j < r.cols; j++) for (let i = j + 1; i < r.rows; i++) assert.equal(r.data[j * r.rows + i], 0, `${label}: R(${i}, ${j}) below the diagonal`);
  return qr;
}

test("QR of tall, square and wide matrices: Q orthonormal and Q·R = A to 1e-12", () => {
  checkQr(randomMatrix(1, 60, 13), "60×13");
  checkQr(randomMatrix(2, 17, 17, 1e-3), "17×17 small entries");
  checkQr(randomMatrix(3, 6, 11, 1e4), "6×11 wide");
  checkQr(randomMatrix(4, 1, 1), "1×1");
  checkQr(randomMatrix(5, 40, 1), "one column");
});

test("rank-deficient input: zero and repeated columns give zeros on R's diagonal and an orthonormal Q", () => {
  const a = randomMatrix(6, 30, 8);
  a.data.fill(0, 2 * 30, 3 * 30); // column 2 is zero
  a.data.fill(0, 7 * 30, 8 * 30); // so is the last
  a.data.copyWithin(5 * 30, 1 * 30, 2 * 30); // column 5 repeats column 1
  const qr = checkQr(a, "zero and repeated columns");
  const r = qr.r();
  const diag = (i: number) => Math.abs(r.data[i * r.rows + i]!);
  const big = Math.max(...Array.from({ length: 8 }, (_, i) => diag(i)));
  assert.ok(big > 1, "the independent columns give a large diagonal");
  // Column 2 adds no direction; column 5 adds one only up to rounding; column 7 none.
  assert.equal(diag(2), 0);
  assert.ok(diag(5) < 1e-12 * big, `R(5,5) = ${diag(5)}`);
  assert.ok(diag(7) < 1e-12 * big, `R(7,7) = ${diag(7)}`);
  assert.ok(diag(0) > 0.1 && diag(1) > 0.1 && diag(3) > 0.1, "the other columns are independent");
});

test("an all-zero matrix factors to Q orthonormal and R = 0", () => {
  const a = colMajorZeros(9, 4);
  const qr = checkQr(a, "zeros");
  assert.ok(qr.r().data.every((v) => v === 0));
});

test("an already upper-triangular matrix keeps its R (reflectors are the identity)", () => {
  const a = colMajorZeros(5, 3);
  [[0, 0, 2], [0, 1, -1], [1, 1, 3], [0, 2, 4], [1, 2, 5], [2, 2, -6]].forEach(([i, j, v]) => { a.data[j! * 5 + i!] = v!; });
  const r = checkQr(a, "triangular").r();
  assert.deepEqual(Array.from(r.data), [2, 0, 0, -1, 3, 0, 4, 5, -6]);
});

test("Q·X applied by reflectors equals the explicit thin Q times X", () => {
  const qr = new HouseholderQr(randomMatrix(7, 50, 12));
  const x = randomMatrix(8, 12, 3);
  const got = qr.applyQ(x);
  const q = qr.q();
  for (let j = 0; j < 3; j++) {
    for (let i = 0; i < 50; i++) {
      let s = 0;
      for (let c = 0; c < 12; c++) s += q.data[c * 50 + i]! * x.data[j * 12 + c]!;
      assert.ok(Math.abs(got.data[j * 50 + i]! - s) < 1e-12, `(${i}, ${j})`);
    }
  }
  assert.throws(() => qr.applyQ(colMajorZeros(11, 1)), /12 rows/);
});
