/**
 * Householder QR of a dense float64 matrix, kept in compact form (LAPACK's dgeqr2 layout): R on and above the
 * diagonal, the reflectors' vectors below it, one scalar τ per reflector. The matrix is column-major so that
 * every reflector touches contiguous columns; Q is never formed unless asked: Q·X is applied reflector by
 * reflector, which for the few columns lowRank.ts needs costs O(rows·cols·|X|) instead of O(rows·cols²).
 *
 * Q = H_0 H_1 … H_{p-1}, p = min(rows, cols), H_k = I − τ_k v_k v_kᵀ with v_k[k] = 1 and v_k[i] = 0 for i < k.
 * A zero (sub)column gives τ = 0 (H = I) and a zero on R's diagonal: rank-deficient input is handled, and Q
 * stays orthonormal whatever the input.
 */

/** A column-major matrix: element (i, j) at data[j * rows + i]. */
export interface ColMajor {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A column-major matrix of zeros. */
export function colMajorZeros(rows: number, cols: number): ColMajor {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** The compact QR of a rows×cols matrix. */
export class HouseholderQr {
  /** Reflectors below the diagonal and R on and above it (column-major, rows×cols). */
  private readonly qr: Float64Array;
  private readonly tau: Float64Array;
  readonly rows: number;
  readonly cols: number;
  /** Number of reflectors and of R's rows: min(rows, cols). */
  readonly p: number;

  /** Factorises `a` (copied, so `a` is left as it is unless `inPlace`). */
  constructor(a: ColMajor, inPlace = false) {
    const m = a.rows, n = a.cols;
    if (a.data.length !== m * n) throw new RangeError(`matrix data has ${a.data.length} elements, not ${m}×${n}`);
    this.rows = m;
    this.cols = n;
    this.p = Math.min(m, n);
    const q = inPlace ? a.data : Float64Array.from(a.data);
    this.qr = q;
    this.tau = new Float64Array(this.p);
    for (let k = 0; k < this.p; k++) {
      const ck = k * m;
      const alpha = q[ck + k]!;
      // ‖x[k+1:]‖ scaled by its largest entry, so that neither tiny nor huge entries under- or overflow.
      let big = 0;
      for (let i = k + 1; i < m; i++) big = Math.max(big, Math.abs(q[ck + i]!));
      if (big === 0) continue; // Already upper-triangular in this column: H_k = I, τ_k = 0.
      let ss = 0;
      for (let i = k + 1; i < m; i++) { const t = q[ck + i]! / big; ss += t * t; }
      const xnorm = big * Math.sqrt(ss);
      const beta = -(alpha >= 0 ? 1 : -1) * Math.hypot(alpha, xnorm);
      const tk = (beta - alpha) / beta;
      const inv = 1 / (alpha - beta);
      for (let i = k + 1; i < m; i++) q[ck + i]! *= inv;
      q[ck + k] = beta;
      this.tau[k] = tk;
      applyReflector(q, m, k, tk, q, k + 1, n);
    }
  }

  /** R: p×cols, upper triangular (trapezoidal when rows < cols), column-major. */
  r(): ColMajor {
    const { p, cols: n, rows: m } = this;
    const out = colMajorZeros(p, n);
    for (let j = 0; j < n; j++) for (let i = 0; i <= Math.min(j, p - 1); i++) out.data[j * p + i] = this.qr[j * m + i]!;
    return out;
  }

  /** Q·X for X with p rows (the thin Q's columns combined): a rows×X.cols matrix. */
  applyQ(x: ColMajor): ColMajor {
    const { p, rows: m } = this;
    if (x.rows !== p) throw new RangeError(`Q·X needs X with ${p} rows, got ${x.rows}`);
    const out = colMajorZeros(m, x.cols);
    for (let j = 0; j < x.cols; j++) out.data.set(x.data.subarray(j * p, (j + 1) * p), j * m);
    for (let k = p - 1; k >= 0; k--) {
      if (this.tau[k] !== 0) applyReflector(this.qr, m, k, this.tau[k]!, out.data, 0, x.cols);
    }
    return out;
  }

  /** The thin Q: rows×p with orthonormal columns. */
  q(): ColMajor {
    const eye = colMajorZeros(this.p, this.p);
    for (let i = 0; i < this.p; i++) eye.data[i * this.p + i] = 1;
    return this.applyQ(eye);
  }
}

/**
 * Applies H_k = I − τ v vᵀ (v stored in column k of `v` below row k, v[k] = 1) to columns [from, to) of `y`, both
 * column-major with `m` rows: y_j −= τ (vᵀ y_j) v. Four columns share each pass over v, which halves the loads
 * of the inner loops; every column is used twice in a row, so it is still in cache for the update.
 */
function applyReflector(v: Float64Array, m: number, k: number, tau: number, y: Float64Array, from: number, to: number): void {
  const ck = k * m;
  let j = from;
  for (; j + 4 <= to; j += 4) {
    const c0 = j * m, c1 = c0 + m, c2 = c1 + m, c3 = c2 + m;
    let w0 = y[c0 + k]!, w1 = y[c1 + k]!, w2 = y[c2 + k]!, w3 = y[c3 + k]!;
    for (let i = k + 1; i < m; i++) {
      const vi = v[ck + i]!;
      w0 += vi * y[c0 + i]!;
      w1 += vi * y[c1 + i]!;
      w2 += vi * y[c2 + i]!;
      w3 += vi * y[c3 + i]!;
    }
    w0 *= tau; w1 *= tau; w2 *= tau; w3 *= tau;
    y[c0 + k]! -= w0; y[c1 + k]! -= w1; y[c2 + k]! -= w2; y[c3 + k]! -= w3;
    for (let i = k + 1; i < m; i++) {
      const vi = v[ck + i]!;
      y[c0 + i]! -= w0 * vi;
      y[c1 + i]! -= w1 * vi;
      y[c2 + i]! -= w2 * vi;
      y[c3 + i]! -= w3 * vi;
    }
  }
  for (; j < to; j++) {
    const cj = j * m;
    let w = y[cj + k]!;
    for (let i = k + 1; i < m; i++) w += v[ck + i]! * y[cj + i]!;
    if (w === 0) continue;
    w *= tau;
    y[cj + k]! -= w;
    for (let i = k + 1; i < m; i++) y[cj + i]! -= w * v[ck + i]!;
  }
}
