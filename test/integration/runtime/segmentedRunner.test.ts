/**
 * The profile pass built as segments of layers in worker threads (runtime/segmentedRunner.ts) against the one-graph
 * runner: the same norm taps, in the same order, for fp32 and int8 weights, 2 and 3 segments (uneven ones too), a
 * batch with padding, and a LoRA shared by layers in different segments. Also: how many segments a profile asks
 * for, the segments' ranges, errors from a worker thread, and the refusal of segments for other architectures.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { loadHfModel } from "../../../extension/core/models/hfModel";
import { loadAdapter } from "../../../extension/core/adapter/peftAdapter";
import { makeBatch } from "../../../extension/core/data/batch";
import { LoraForwardRunner } from "../../../extension/core/runtime/loraRunner";
import { profileSegments, SegmentedForwardRunner, segmentRanges } from "../../../extension/core/runtime/segmentedRunner";
import { ThreadSession } from "../../../extension/core/runtime/threadSession";
import { quantizeModel } from "../../../extension/core/models/quantizedWeights";
import { buildForward } from "../../../extension/core/models";
import { GraphBuilder } from "../../../extension/core/onnx/builder";
import { LoraDropError } from "../../../extension/core/util/errors";
import { writeTinyArchModel } from "../../fixtures/tinyArch";
import { makeFixture, maxRelErr, tmpDir } from "../../helpers";

const SEQS = [[1, 45, 66, 29, 33, 26, 7, 90, 12], [1, 31, 181, 5]];

function batch() {
  return makeBatch(SEQS.map((ids, i) => ({ ids, tokens: ids.map(String), special: ids.map(() => false), lossMask: ids.map(() => true), example: i })));
}

test("segments in worker threads give the one-graph runner's norm taps (fp32 and int8, 2 and 3 segments, a shared LoRA)", async () => {
  const fx = makeFixture({ tokenizer: false, numLayers: 5, numKvHeads: 2 }, { targets: ["q_proj", "v_proj", "down_proj"] });
  const model = loadHfModel(fx.modelDir);
  let loras = loadAdapter(fx.adapterDir, model.config).loras;
  // Layers 0 and 4 (in different segments) share one v_proj pair, as a LoRA-drop adapter's shared LoRA does.
  const shared = loras.find((l) => l.module === "v_proj" && l.layer === 0)!;
  loras = loras.map((l) => (l.module === "v_proj" && l.layer === 4 ? { ...l, A: shared.A, B: shared.B, param: shared.param } : l));
  const b = batch();
  for (const precision of ["fp32", "int8"] as const) {
    const quantized = await quantizeModel(model, precision, { cacheDir: path.join(tmpDir(), "quant"), numLayers: 5 });
    const whole = await LoraForwardRunner.create(model, loras, { logits: false, loraNorms: true, device: "cpu", threads: 1, truncateAfterLastLora: true, quantized });
    const ref = (await whole.run(b, loras)).loraNorms!;
    await whole.dispose();
    for (const segments of [2, 3]) {
      const runner = await SegmentedForwardRunner.create(model, loras, { numLayers: 5, segments, device: "cpu", threads: 1, quantized });
      try {
        assert.deepEqual(runner.tapOrder, whole.graph.tapOrder, `${precision} × ${segments}: tap order`);
        const got = (await runner.run(b, loras)).loraNorms;
        assert.equal(got.length, ref.length);
        const { err } = maxRelErr(got, ref);
        assert.ok(err < 1e-5, `${precision} × ${segments} segments: max relative difference ${err}`);
        // A second batch through the same sessions (the feeds' buffers moved to the threads the first time).
        const again = (await runner.run(b, loras)).loraNorms;
        assert.deepEqual(again, got);
      } finally {
        await runner.dispose();
      }
    }
  }
});

test("segment ranges cover the layers once, in order; a large quantized Llama asks for one per core", () => {
  assert.deepEqual(segmentRanges(32, 2), [{ first: 0, end: 16 }, { first: 16, end: 32 }]);
  assert.deepEqual(segmentRanges(5, 3), [{ first: 0, end: 1 }, { first: 1, end: 3 }, { first: 3, end: 5 }]);
  assert.deepEqual(segmentRanges(2, 4), [{ first: 0, end: 1 }, { first: 1, end: 2 }]);
  const GIB = 1 << 30;
  assert.equal(profileSegments("llama", 4 * GIB, 32, 2), 2);
  assert.equal(profileSegments("qwen2", 4 * GIB, 32, 16), 8, "at most 8");
  assert.equal(profileSegments("llama", 4 * GIB, 3, 16), 3, "at most one per layer");
  assert.equal(profileSegments("llama", GIB / 2, 32, 2), 1, "a small model starts fast as one session");
  assert.equal(profileSegments("gpt2", 4 * GIB, 32, 2), 1, "segments are built for the Llama family only");
});

test("a session thread's creation error arrives typed; other architectures refuse segments", async () => {
  const fx = makeFixture({ tokenizer: false, numLayers: 2 }, {});
  const model = loadHfModel(fx.modelDir);
  const g = new GraphBuilder();
  const graph = buildForward(g, model, [], { logits: false, loraNorms: false, segment: { first: 1, end: 2 } });
  g.output(graph.hiddenOut!);
  // The graph names a weights file that is not given: the session cannot load its initializers.
  await assert.rejects(ThreadSession.create(g.toBytes(), { device: "cpu", shardFiles: [] }), (e: unknown) => {
    assert.ok(e instanceof LoraDropError, `typed: ${String(e)}`);
    assert.equal(e.code, "DEVICE_UNAVAILABLE");
    return true;
  });
  const dir = tmpDir();
  writeTinyArchModel(path.join(dir, "gpt2"), { architecture: "gpt2" });
  const gpt2 = loadHfModel(path.join(dir, "gpt2"));
  assert.throws(() => buildForward(new GraphBuilder(), gpt2, [], { logits: false, loraNorms: false, segment: { first: 0, end: 1 } }), /not built in segments/);
});
