/**
 * The streamed reader's dtype conversion equals the safetensors reader's (BF16 pairs and odd tails, F16 via the
 * table, F32 copies), on aligned and unaligned byte views.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { convertToF32 } from "../../../../extension/core/io/safetensors";
import { floatToBf16, floatToHalf, toFloat32 } from "../../../../extension/core/io/safetensors";

test("convertToF32 matches toFloat32 for BF16, F16 and F32, aligned or not, even or odd lengths", () => {
  const values = [0, -0, 1, -2.5, 3.1415927, 1e-8, -6e4, 65504, 1e30, Infinity, -Infinity, 0.33333334, 7];
  for (const n of [values.length, values.length - 1]) {
    const v = values.slice(0, n);
    const enc: Record<string, Uint8Array> = {
      BF16: new Uint8Array(Uint16Array.from(v.map(floatToBf16)).buffer),
      F16: new Uint8Array(Uint16Array.from(v.map(floatToHalf)).buffer),
      F32: new Uint8Array(Float32Array.from(v).buffer),
    };
    for (const [dtype, bytes] of Object.entries(enc)) {
      for (const shift of [0, 2]) {
        const backing = new Uint8Array(bytes.length + 4);
        backing.set(bytes, shift);
        const view = backing.subarray(shift, shift + bytes.length);
        const out = new Float32Array(n);
        convertToF32(view, dtype, out);
        assert.deepEqual(Array.from(out), Array.from(toFloat32(bytes, dtype as "BF16" | "F16" | "F32")), `${dtype} n=${n} offset ${shift}`);
      }
    }
  }
});
