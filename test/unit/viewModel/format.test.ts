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
  assert.equal(runSummary({ device: "cpu", timing: { tokens_per_second: 1234.4 } }), "onnx cpu · 1,234 tok/s", "a profile without an engine field is an onnx one");
  assert.equal(runSummary({ device: "webgpu", engine: "onnx", timing: { tokens_per_second: 10, peak_rss_bytes: 2 * 1024 ** 3 } }), "onnx webgpu · 10 tok/s · peak 2.00 GiB");
  assert.equal(runSummary({ device: "torch cuda bfloat16", engine: "torch", timing: { tokens_per_second: 52000 } }), "torch cuda bfloat16 · 52,000 tok/s");
});
