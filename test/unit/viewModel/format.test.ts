/**
 * The panel header's run summary: device, throughput and (when recorded) peak memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bytesText, runSummary } from "../../../extension/viewModel/format";

test("bytes in binary units", () => {
  assert.equal(bytesText(512), "512 B");
  assert.equal(bytesText(1536), "1.50 KiB");
  assert.equal(bytesText(3.34 * 1024 ** 3), "3.34 GiB");
});

test("run summary shows peak memory only when the profile recorded it", () => {
  assert.equal(runSummary({ device: "cpu", timing: { tokens_per_second: 1234.4 } }), "onnx cpu · fp32 · 1,234 tok/s", "a profile without engine and precision fields is an onnx fp32 one");
  assert.equal(runSummary({ device: "webgpu", engine: "onnx", timing: { tokens_per_second: 10, peak_rss_bytes: 2 * 1024 ** 3 } }), "onnx webgpu · fp32 · 10 tok/s · peak 2.00 GiB");
  assert.equal(runSummary({ device: "cpu", engine: "onnx", precision: "int8", timing: { tokens_per_second: 361 } }), "onnx cpu · int8 · 361 tok/s");
  assert.equal(runSummary({ device: "torch cuda bfloat16", engine: "torch", timing: { tokens_per_second: 52000 } }), "torch cuda bfloat16 · 52,000 tok/s");
});
