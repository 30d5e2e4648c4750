/**
 * Comparison of two profiles' layer importance (before/after training, or output vs gradient criterion).
 */
import type { ProfileFile } from "../core/importance/profileSchema";
import { selectForProfile } from "./layerSelection";

/** Per-layer importance of both profiles, their difference, and how their LoRA-drop choices overlap. */
export interface ImportanceComparison {
  /** False when the profiles have different layer counts: only side-by-side bars make sense then. */
  aligned: boolean;
  primary: number[];
  compare: number[];
  /** compare − primary per layer (empty when not aligned). */
  difference: number[];
  /** Layer positions kept by both / only by the primary / only by the comparison profile at the threshold. */
  keptBoth: number[];
  keptPrimaryOnly: number[];
  keptCompareOnly: number[];
}

/** Compares the two profiles' per-layer importance at LoRA-drop threshold `threshold`. */
export function compareImportance(primary: ProfileFile, compare: ProfileFile, threshold: number): ImportanceComparison {
  const a = primary.importance.per_layer;
  const b = compare.importance.per_layer;
  const aligned = a.length === b.length;
  const keptA = selectForProfile(primary, threshold).kept;
  const keptB = selectForProfile(compare, threshold).kept;
  const result: ImportanceComparison = { aligned, primary: [...a], compare: [...b], difference: [], keptBoth: [], keptPrimaryOnly: [], keptCompareOnly: [] };
  if (!aligned) return result;
  for (let i = 0; i < a.length; i++) {
    result.difference.push((b[i] as number) - (a[i] as number));
    if (keptA[i] && keptB[i]) result.keptBoth.push(i);
    else if (keptA[i]) result.keptPrimaryOnly.push(i);
    else if (keptB[i]) result.keptCompareOnly.push(i);
  }
  return result;
}
