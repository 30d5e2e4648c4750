/**
 * One LoRA pair as the engine holds it: its place (layer, module), rank and scale, its A and B values, and the
 * parameter it is bound to (several modules bound to one parameter share one LoRA).
 */

/** One LoRA pair on one module of one layer. */
export interface LoraModule {
  layer: number;
  module: string;
  r: number;
  /** s = alpha / r (or alpha / sqrt(r) with rsLoRA). */
  scale: number;
  inFeatures: number;
  outFeatures: number;
  /** A: [r, in], row-major. */
  A: Float32Array;
  /** B: [out, r], row-major. */
  B: Float32Array;
  /**
   * The parameter this pair is bound to. Modules with the same `param` share one A/B (LoRA-drop's shared set):
   * the graph feeds them one input and training sums their gradients.
   */
  param: string;
}

/** The parameter name of an unshared LoRA pair. */
export function ownParam(layer: number, module: string): string {
  return `L${layer}.${module}`;
}

/** Number of trainable parameters, counting each shared parameter once. */
export function countLoraParams(loras: LoraModule[]): number {
  const seen = new Set<string>();
  let n = 0;
  for (const l of loras) {
    if (seen.has(l.param)) continue;
    seen.add(l.param);
    n += l.r * (l.inFeatures + l.outFeatures);
  }
  return n;
}
