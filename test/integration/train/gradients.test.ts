/**
 * The training graph's loss and LoRA gradients against an independent computation: the causal-LM loss of the
 * plain-loop float64 reference model (test/reference), differentiated by central finite differences. Checked per
 * parameter tensor along a random direction and at single entries, on fixtures covering GQA, q/k/v biases
 * (qwen2), rsLoRA, every target module, and a LoRA shared by several layers — with padding and prompt tokens that
 * are not targets in the batch.
 *
 * Tolerance: the graph runs in float32 (relative rounding ~1e-7 per op, accumulated over a few hundred ops), the
 * reference in float64 with h = 1e-5: its rounding error is ~1e-16·|L|/h ≈ 1e-10 and its truncation error
 * h²·|L'''|/6 stays below 1e-6 even on the fixture's deliberately large random adapters (with h = 1e-2 the
 * quotient is visibly curved there). An error of 2e-3 of the gradient's norm on a directional derivative therefore
 * passes a correct gradient with margin and fails any wrong rule, which shows up at order 1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { makeBatch } from "../../../extension/core/data/batch";
import { TokenizedExample } from "../../../extension/core/data/dataset";
import { slotOf } from "../../../extension/core/runtime/loraRunner";
import { LossSession, LoraParam, countTargets } from "../../../extension/core/runtime/lossSession";
import { referenceLoss as lossOf, float64Modules as modulesFrom } from "./trainReference";
import { makeFixture } from "../../helpers";
import { TinyModelOptions, TinyAdapterOptions } from "../../../extension/core/demo/tinyModel";
import { Rng } from "../../../extension/core/util/random";

const SEQS = [[1, 45, 66, 29, 33, 26, 7], [1, 31, 181], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
// The second sequence is prompt/completion-like: only its last token is a target.
const MASKS = [SEQS[0]!.map((_, t) => t > 0), [false, false, true], SEQS[2]!.map((_, t) => t > 2)];

function examples(): TokenizedExample[] {
  return SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: MASKS[i]!, example: i }));
}

async function checkGradients(name: string, m: TinyModelOptions, a: TinyAdapterOptions, share?: { module: string; layers: number[] }): Promise<void> {
  const fx = makeFixture({ tokenizer: false, numLayers: 3, ...m }, a);
  const model = loadHfModel(fx.modelDir);
  let loras = loadAdapter(fx.adapterDir, model.config).loras;
  if (share) {
    // One shared pair (the first shared layer's values) bound to the module in every shared layer.
    const first = loras.find((l) => l.module === share.module && l.layer === share.layers[0])!;
    loras = loras.map((l) => (l.module === share.module && share.layers.includes(l.layer) ? { ...l, A: first.A, B: first.B, param: `shared.${l.module}` } : l));
  }
  const values = new Map<string, { A: Float64Array; B: Float64Array }>();
  const params = new Map<string, LoraParam>();
  for (const l of loras) {
    if (values.has(l.param)) continue;
    values.set(l.param, { A: Float64Array.from(l.A), B: Float64Array.from(l.B) });
    params.set(l.param, { name: l.param, r: l.r, inFeatures: l.inFeatures, outFeatures: l.outFeatures, A: l.A, B: l.B });
  }
  const session = await LossSession.create(model, loras.map(slotOf), { gradients: true, dropout: false, device: "cpu" });
  try {
    const batch = makeBatch(examples());
    const { loss, grads } = await session.run(batch, countTargets(batch), params);
    const ref0 = lossOf(model, modulesFrom(loras, values), SEQS, MASKS);
    assert.ok(Math.abs(loss - ref0) < 1e-5 * Math.abs(ref0), `${name}: loss ${loss} vs reference ${ref0}`);
    if (share) assert.equal(grads!.size, values.size, "one gradient per distinct parameter");

    const rng = new Rng(99);
    const h = 1e-5;
    for (const [param, v] of values) {
      for (const which of ["A", "B"] as const) {
        const got = grads!.get(param)![which];
        const x = v[which];
        const lossAlong = (dir: Float64Array, step: number) => {
          const saved = Float64Array.from(x);
          for (let i = 0; i < x.length; i++) x[i] = saved[i]! + step * dir[i]!;
          const l = lossOf(model, modulesFrom(loras, values), SEQS, MASKS);
          x.set(saved);
          return l;
        };
        // A random unit direction, then the largest-gradient entry (a one-hot direction).
        const dir = Float64Array.from({ length: x.length }, () => rng.normal());
        const norm = Math.hypot(...dir);
        for (let i = 0; i < dir.length; i++) dir[i]! /= norm;
        let top = 0;
        for (let i = 1; i < got.length; i++) if (Math.abs(got[i]!) > Math.abs(got[top]!)) top = i;
        const oneHot = new Float64Array(x.length);
        oneHot[top] = 1;
        for (const [label, d] of [["random direction", dir], [`entry ${top}`, oneHot]] as const) {
          const fd = (lossAlong(d, h) - lossAlong(d, -h)) / (2 * h);
          let analytic = 0;
          for (let i = 0; i < d.length; i++) analytic += got[i]! * d[i]!;
          const scale = Math.hypot(...got) + 1e-6;
          assert.ok(Math.abs(analytic - fd) < 2e-3 * scale,
            `${name}: ${param}.${which} along ${label}: graph ${analytic}, finite differences ${fd} (gradient norm ${scale})`);
        }
      }
    }
  } finally {
    await session.dispose();
  }
}

test("LoRA gradients match finite differences: llama with GQA, q/v LoRA", () =>
  checkGradients("gqa", { numHeads: 4, numKvHeads: 2 }, {}));
test("LoRA gradients match finite differences: qwen2 q/k/v biases, every target module, rsLoRA", () =>
  checkGradients("qwen2", { architecture: "qwen2", numHeads: 4, numKvHeads: 1, tieWordEmbeddings: true },
    { targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], useRslora: true, rankPattern: { k_proj: 2 } }));
test("LoRA gradients match finite differences: a LoRA shared by layers 0 and 2", () =>
  checkGradients("shared", { numLayers: 3 }, { targets: ["q_proj", "v_proj"] }, { module: "v_proj", layers: [0, 2] }));
