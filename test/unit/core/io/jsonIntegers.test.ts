/**
 * Integers written as floats: the scan finds `16.0`, `1.6e1`, `-0` with the keys that lead to them (strings and
 * keys that look like numbers are skipped), and a safetensors header spelling a shape or an offset that way is
 * refused as the reference refuses it, with the code of the field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { findNonIntegerNumber } from "../../../../extension/core/io/jsonIntegers";
import { parseHeader } from "../../../../extension/core/io/safetensors";
import { LoraDropError } from "../../../../extension/core/util/errors";

test("the first non-integer number and its keys", () => {
  assert.equal(findNonIntegerNumber('{"a":{"shape":[2,3],"data_offsets":[0,24]},"b":"1.5","1.5":{"x":[7]}}'), undefined);
  for (const [text, token, keys] of [
    ['{"a":{"shape":[2.0,3]}}', "2.0", ["a", "shape"]],
    ['{"w":{"dtype":"F32","data_offsets":[0,1.6e1]}}', "1.6e1", ["w", "data_offsets"]],
    ['{"w":{"shape":[-0]}}', "-0", ["w", "shape"]],
    ['{"k\\"ey":{"shape":[[1E2]]}}', "1E2", ['k"ey', "shape"]],
  ] as const) {
    assert.deepEqual(findNonIntegerNumber(text), { token, path: [...keys] }, text);
  }
});

test("a safetensors header with a float shape or offset is refused with the field's code", () => {
  const header = (shape: string, offsets: string) => new TextEncoder().encode(`{"t":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`);
  parseHeader("a.safetensors", header("[2]", "[0,8]"), 8, 16);
  const refuse = (shape: string, offsets: string, code: string, field: string) => assert.throws(() => parseHeader("a.safetensors", header(shape, offsets), 8, 16),
    (e: unknown) => e instanceof LoraDropError && e.code === code && e.message.startsWith(`a.safetensors: tensor t has ${field} written as`));
  refuse("[2.0]", "[0,8]", "SAFETENSORS_HEADER_INVALID", "shape");
  refuse("[2]", "[0,8e0]", "SAFETENSORS_BAD_OFFSETS", "data_offsets");
  refuse("[2]", "[-0,8]", "SAFETENSORS_BAD_OFFSETS", "data_offsets");
});
