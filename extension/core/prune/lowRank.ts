/**
 * The shared LoRA's initialisation when an already-trained adapter is pruned: the best rank-r approximation (in
 * Frobenius and spectral norm, Eckart–Young) of the mean of the shared layers' updates ΔW_i = s_i·B_i·A_i.
 *
 * It is computed from the factors only. With k = Σ r_i,
 *   mean ΔW = (1/n) · [s_1 B_1 … s_n B_n] · [A_1; …; A_n] = (1/n) · SB · SA      (SB: out×k, SA: k×in)
 *   SB = Q_B R_B (QR),  SAᵀ = Q_A R_A (QR, i.e. an LQ of SA; Householder, householderQr.ts)
 *   mean ΔW = Q_B · (R_B R_Aᵀ / n) · Q_Aᵀ,  and the small core R_B R_Aᵀ / n = U Σ Vᵀ (SVD)
 * so the top-r part is (Q_B U_r) Σ_r (Q_A V_r)ᵀ. The cost is O((out + in)·k²), never an out×in matrix.
 */
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { ColMajor, colMajorZeros, HouseholderQr } from "./householderQr";

/** One layer's LoRA factors as the approximation needs them. */
export interface LoraFactors {
  /** A: [r, in], row-major. */
  A: Float32Array;
  /** B: [out, r], row-major. */
  B: Float32Array;
  r: number;
  scale: number;
  inFeatures: number;
  outFeatures: number;
}

/** A rank-r pair whose product times `scale` is the approximation, plus the spectrum it came from. */
export interface LowRankPair {
  /** [r, in]. */
  A: Float32Array;
  /** [out, r]. */
  B: Float32Array;
  /** Every singular value of the mean ΔW that the factors can carry (descending; at most k = Σ r_i of them). */
  singularValues: number[];
}

/**
 * Best rank-`r` approximation of mean_i(s_i·B_i·A_i), returned as factors B, A with `scale`·B·A equal to it.
 * The singular values are split evenly (√σ on each side) so neither factor dominates when training continues.
 * When the mean has fewer than r non-zero singular values, the remaining rank components are zero.
 */
export function meanLowRank(layers: readonly LoraFactors[], r: number, scale: number): LowRankPair {
  if (layers.length === 0) throw new RangeError("meanLowRank needs at least one layer");
  const { inFeatures: n, outFeatures: m } = layers[0]!;
  for (const l of layers) {
    if (l.inFeatures !== n || l.outFeatures !== m) throw new RangeError(`all layers must have the same shape (${m}×${n}), got ${l.outFeatures}×${l.inFeatures}`);
  }
  if (!(scale !== 0 && Number.isFinite(scale))) throw new RangeError(`scale must be a non-zero number, got ${scale}`);
  const k = layers.reduce((a, l) => a + l.r, 0);
  // SB = [s_1 B_1 … s_n B_n] (out × k) and SAᵀ = [A_1ᵀ … A_nᵀ] (in × k), column-major float64.
  const SB = colMajorZeros(m, k);
  const SAt = colMajorZeros(n, k);
  let c0 = 0;
  for (const l of layers) {
    for (let j = 0; j < l.r; j++) {
      const b = SB.data.subarray((c0 + j) * m, (c0 + j + 1) * m);
      for (let i = 0; i < m; i++) b[i] = l.scale * l.B[i * l.r + j]!;
      SAt.data.set(l.A.subarray(j * n, (j + 1) * n), (c0 + j) * n);
    }
    c0 += l.r;
  }
  const qb = new HouseholderQr(SB, true);
  const qa = new HouseholderQr(SAt, true);
  const core = coreMatrix(qb.r(), qa.r(), layers.length);
  const svd = new SingularValueDecomposition(core, { autoTranspose: true });
  const sigma = svd.diagonal;
  // Left factor Q_B·U_r·√Σ_r / √|s| and right factor √Σ_r·V_rᵀ·Q_Aᵀ / √|s|; the sign of s goes to B.
  const kept = Math.min(r, sigma.length);
  const Bm = qb.applyQ(leadingColumns(svd.leftSingularVectors, kept));
  const Am = qa.applyQ(leadingColumns(svd.rightSingularVectors, kept));
  const A = new Float32Array(r * n);
  const B = new Float32Array(m * r);
  for (let j = 0; j < kept; j++) {
    const w = Math.sqrt(Math.max(sigma[j]!, 0) / Math.abs(scale));
    for (let i = 0; i < n; i++) A[j * n + i] = Am.data[j * n + i]! * w;
    for (let i = 0; i < m; i++) B[i * r + j] = Bm.data[j * m + i]! * w * Math.sign(scale);
  }
  return { A, B, singularValues: Array.from(sigma) };
}

/** The small core R_B·R_Aᵀ / count (p_B × p_A) as an ml-matrix Matrix for the SVD. */
function coreMatrix(rb: ColMajor, ra: ColMajor, count: number): Matrix {
  const core = new Matrix(rb.rows, ra.rows);
  for (let i = 0; i < rb.rows; i++) {
    for (let j = 0; j < ra.rows; j++) {
      let s = 0;
      for (let c = 0; c < rb.cols; c++) s += rb.data[c * rb.rows + i]! * ra.data[c * ra.rows + j]!;
      core.set(i, j, s / count);
    }
  }
  return core;
}

/** The first `cols` columns of M as a column-major matrix. */
function leadingColumns(M: Matrix, cols: number): ColMajor {
  const out = colMajorZeros(M.rows, cols);
  for (let j = 0; j < cols; j++) for (let i = 0; i < M.rows; i++) out.data[j * M.rows + i] = M.get(i, j);
  return out;
}
