/**
 * The thresholds a sweep measures by default: one per distinct kept set the profile allows. Kept sets grow at the
 * cumulative importance of each next layer (per module with a per-module selection), so those cumulative values
 * are exactly the thresholds at which the pruned adapter changes; any T between two of them builds the same one.
 */
import { cumulativeCurve, normalise } from "../importance/selection";
import type { ProfileFile } from "../importance/profileSchema";

/**
 * Every threshold in (0, 1] at which the kept set changes, ascending, with 1 always included (nothing but
 * zero-importance layers shared). `candidates[module]` lists the profile positions that carry a LoRA for that module.
 */
export function distinctThresholds(profile: Pick<ProfileFile, "importance">, candidates: Readonly<Record<string, readonly number[]>>, perModule: boolean): number[] {
  const curves: number[][] = [];
  if (perModule) {
    for (const [m, positions] of Object.entries(candidates)) curves.push(curveOver(profile.importance.per_module[m] ?? [], positions));
  } else {
    const positions = [...new Set(Object.values(candidates).flat())].sort((a, b) => a - b);
    curves.push(curveOver(profile.importance.per_layer, positions));
  }
  const out = new Set<number>([1]);
  for (const curve of curves) {
    // A layer of zero importance adds nothing: its step is no new kept set.
    curve.forEach((c, k) => {
      if (c > 0 && (k === 0 || c > curve[k - 1]!)) out.add(Math.min(1, c));
    });
  }
  return [...out].sort((a, b) => a - b);
}

/** The cumulative curve of `importance` over `positions`, renormalised over them as the selection does. */
function curveOver(importance: readonly number[], positions: readonly number[]): number[] {
  return cumulativeCurve(normalise(positions.map((i) => importance[i] ?? 0)));
}
