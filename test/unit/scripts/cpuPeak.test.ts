/**
 * The CPU peak estimate from /proc/cpuinfo (the fallback when the micro-benchmark cannot be compiled), on fixed
 * cpuinfo texts: cores × clock × fp32 lanes × 2 FMA units × 2, with Zen 4's AVX-512 counted at 256-bit width.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { estimatePeak, describePeak } from "../../../scripts/bench/cpuPeak";

const cpuinfo = (family: string, flags: string, mhz = "2596.122") =>
  `processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: ${family}\nmodel name\t: AMD EPYC\ncpu MHz\t\t: ${mhz}\nflags\t\t: fpu sse ${flags}\n`;

test("Zen 5 with AVX-512 and VNNI: 16 lanes, int8 at 4 multiply-adds per lane", () => {
  const p = estimatePeak(2, cpuinfo("26", "fma avx2 avx512f avx512_vnni"));
  assert.ok(Math.abs(p.fp32Gflops - 2 * 2.596122 * 16 * 4) < 1e-9);
  assert.ok(Math.abs(p.int8Gops! - 4 * p.fp32Gflops) < 1e-9);
  assert.equal(p.method, "estimated");
  assert.match(describePeak(p), /^fp32 332 GFLOP\/s, int8 1329 GOP\/s \(estimated: 2 cores × 2\.60 GHz × 16 fp32 lanes/);
});

test("Zen 4 runs AVX-512 on 256-bit units; AVX2 machines have 8 lanes and no int8 figure without VNNI", () => {
  assert.equal(estimatePeak(2, cpuinfo("25", "fma avx2 avx512f avx512_vnni", "3600")).fp32Gflops, 230.4);
  const avx2 = estimatePeak(4, cpuinfo("23", "fma avx2", "3000"));
  assert.equal(avx2.fp32Gflops, 384);
  assert.equal(avx2.int8Gops, undefined);
});
