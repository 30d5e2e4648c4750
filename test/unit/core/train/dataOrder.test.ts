/**
 * The training data order: every epoch visits every example once, a step ends early at an epoch's end, and an
 * order rebuilt from its saved state continues exactly as the original.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataOrder, stepsPerEpoch } from "../../../../extension/core/train/dataOrder";

test("each epoch covers every example exactly once, in micro-batches of at most batchSize, steps of at most gradAccum", () => {
  for (const [size, batch, accum] of [[10, 3, 2], [8, 4, 1], [5, 8, 3], [1, 1, 1], [17, 2, 4]] as const) {
    const order = new DataOrder(size, batch, accum, 11);
    for (let epoch = 0; epoch < 3; epoch++) {
      const seen: number[] = [];
      const steps = stepsPerEpoch(size, batch, accum);
      for (let s = 0; s < steps; s++) {
        const micro = order.nextStep();
        assert.ok(micro.length >= 1 && micro.length <= accum);
        for (const m of micro) {
          assert.ok(m.length >= 1 && m.length <= batch);
          seen.push(...m);
        }
      }
      assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: size }, (_, i) => i), `size ${size} batch ${batch} accum ${accum} epoch ${epoch}`);
      assert.equal(order.epoch, epoch + 1);
    }
  }
});

test("the order is seeded: the same seed repeats it, another seed changes it, and epochs differ", () => {
  const take = (seed: number) => {
    const o = new DataOrder(50, 5, 1, seed);
    return Array.from({ length: 20 }, () => o.nextStep().flat());
  };
  assert.deepEqual(take(3), take(3));
  assert.notDeepEqual(take(3), take(4));
  const epochs = take(3);
  assert.notDeepEqual(epochs.slice(0, 10).flat(), epochs.slice(10, 20).flat());
});

test("an order rebuilt from state() continues exactly as the original, mid-epoch and at an epoch's end", () => {
  for (const cut of [0, 1, 3, 4, 7]) {
    const a = new DataOrder(13, 3, 2, 5);
    for (let i = 0; i < cut; i++) a.nextStep();
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = new DataOrder(13, 3, 2, 5, saved);
    for (let i = 0; i < 12; i++) assert.deepEqual(b.nextStep(), a.nextStep(), `cut ${cut}, step ${i}`);
  }
});
