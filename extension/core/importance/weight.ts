/**
 * The `weight` criterion: each layer scored by the squared Frobenius norm of its LoRA update, ‖s·B·A‖_F², from
 * the weights alone (no data runs through the model; the examples are still recorded in the profile).
 */
import type { LoraModule } from "../adapter/loraModule";
import type { RunContext } from "../util/progress";
import { throwIfCancelled } from "../util/errors";
import { assembleProfile, assertFiniteNorms, loadProfileInputs, zeroTable } from "./assemble";
import type { ProfileOptions } from "./options";
import type { ProfileFile } from "./profileSchema";

/** ||s·B·A||_F², computed from r×r Gram matrices (never forms the out×in product). */
export function loraWeightNorm(l: LoraModule): number {
  const { r, inFeatures: n, outFeatures: m } = l;
  const aat = new Float64Array(r * r);
  const btb = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let sa = 0;
      for (let k = 0; k < n; k++) sa += l.A[i * n + k]! * l.A[j * n + k]!;
      aat[i * r + j] = sa;
      let sb = 0;
      for (let k = 0; k < m; k++) sb += l.B[k * r + i]! * l.B[k * r + j]!;
      btb[i * r + j] = sb;
    }
  }
  let s = 0;
  for (let i = 0; i < r * r; i++) s += aat[i]! * btb[i]!;
  return l.scale * l.scale * s;
}

/** Profiles an adapter with the weight criterion. */
export async function profileWeight(opts: ProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const started = Date.now();
  const { model, adapter, examples } = loadProfileInputs(opts);
  throwIfCancelled(ctx.signal, "profile");
  const perModuleRaw = zeroTable(adapter.modules, model.config.numLayers);
  for (const l of adapter.loras) perModuleRaw[l.module]![l.layer]! += loraWeightNorm(l);
  assertFiniteNorms(perModuleRaw, adapter, opts.adapterDir, model.dir);
  return assembleProfile({ opts, model, adapter, examples, criterion: "weight", device: "cpu", perModuleRaw, started });
}
