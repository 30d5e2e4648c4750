/**
 * AdamW over Float32Arrays, as torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments),
 * plus gradient clipping by global norm. The optimiser step is plain TypeScript: the LoRA parameters are a few MB,
 * so a second ONNX graph would cost more in feeding and fetching than the arithmetic itself.
 */

/** AdamW hyperparameters. */
export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW's defaults, with Hugging Face Trainer's weight decay of 0. */
export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/** The moments of one parameter tensor. */
export interface Moments {
  m: Float32Array;
  v: Float32Array;
}

/** AdamW state: the step count and the moments of every tensor (keyed by name). */
export class AdamW {
  /** Number of updates applied so far. */
  step = 0;
  readonly moments = new Map<string, Moments>();

  constructor(readonly opts: AdamWOptions = ADAMW_DEFAULTS) {}

  /** Begins one update: call before `update` for each tensor of the step. */
  beginStep(): void {
    this.step++;
  }

  /** Updates one tensor in place with its gradient at learning rate `lr`. */
  update(name: string, param: Float32Array, grad: Float32Array, lr: number): void {
    if (param.length !== grad.length) throw new Error(`AdamW: ${name} has ${param.length} values but ${grad.length} gradients`);
    let st = this.moments.get(name);
    if (!st) {
      st = { m: new Float32Array(param.length), v: new Float32Array(param.length) };
      this.moments.set(name, st);
    }
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const bc1 = 1 - Math.pow(beta1, this.step);
    const bc2 = 1 - Math.pow(beta2, this.step);
    const stepSize = lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    const decay = 1 - lr * weightDecay;
    const { m, v } = st;
    for (let i = 0; i < param.length; i++) {
      const g = grad[i]!;
      const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * g);
      const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * g * g);
      // torch: p ← p·(1 − lr·wd) − (lr / bc1) · m / (√v / √bc2 + ε)
      param[i] = param[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  }
}

/** The global L2 norm of a set of gradient tensors (accumulated in float64). */
export function globalNorm(grads: Iterable<Float32Array>): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

/** Scales gradients in place so their global norm is at most `maxNorm` (torch's clip_grad_norm_); returns the norm before clipping. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  }
  return norm;
}
