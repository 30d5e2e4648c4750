/**
 * Property-based fuzzing (fast-check) of the safetensors header parser, the file reader and the adapter reader:
 * whatever the bytes, they throw nothing but LoraDropError, and what they accept is consistent; encoding random
 * tensors and reading them back reproduces them (F32 exactly, F16 and BF16 within their rounding).
 *
 * Time-bounded: FUZZ_SECONDS per property (default 1 in `npm test`; `npm run fuzz` runs longer with a fresh seed).
 * A failure prints fast-check's seed and counterexample; rerun it with FUZZ_SEED.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { LoraDropError } from "../../extension/core/util/errors";
import { parseHeader, readSafetensorsIndex, readTensorF32, encodeSafetensors, TensorToWrite } from "../../extension/core/io/safetensors";
import { findDuplicateKey } from "../../extension/core/io/jsonDuplicates";
import { loadAdapter } from "../../extension/core/adapter/peftAdapter";
import { parseModelConfig } from "../../extension/core/models/hfModel";
import { Rng } from "../../extension/core/util/random";
import { tmpDir } from "../helpers";
import { randomMutation, headerText, assemble, RawJson, Entry, DTYPE_BYTES } from "./stMutate";
import { moduleDims, DECODER_MODULES } from "../../extension/core/models/arch";

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 1);
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.FUZZ_SECONDS !== undefined ? Date.now() % 2 ** 31 : 42;
const dir = tmpDir("lora-drop-fuzz-");

/** Runs a property for the time budget (however many runs fit), failing on the first counterexample. */
function check<T>(prop: fc.IProperty<T> | fc.IAsyncProperty<T>): Promise<void> | void {
  return fc.assert(prop as fc.IAsyncProperty<T>, { seed: SEED, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false });
}

/** Inputs the current property's reader accepted and refused (reported, so a vacuous property shows). */
const tally = { accepted: 0, refused: 0 };

/** Runs `f`; returns its value, or undefined when it threw a LoraDropError; rethrows anything else. */
function typed<T>(f: () => T): T | undefined {
  try {
    const v = f();
    tally.accepted++;
    return v;
  } catch (e) {
    if (e instanceof LoraDropError) {
      tally.refused++;
      return undefined;
    }
    throw e;
  }
}

/** A fuzz test: runs `body`, then reports how many inputs were accepted and refused. */
function fuzz(name: string, body: () => Promise<void> | void, minAccepted = 0): void {
  test(name, async (t) => {
    tally.accepted = 0;
    tally.refused = 0;
    await body();
    t.diagnostic(`seed ${SEED}, ${SECONDS} s: ${tally.accepted} accepted, ${tally.refused} refused`);
    assert.ok(tally.accepted >= minAccepted, `only ${tally.accepted} inputs accepted: the generator hardly reaches the checks after validation`);
  });
}

const dtypes = Object.keys(DTYPE_BYTES);

/** Headers that are valid by construction, before an optional random tweak. */
const validTensors = fc.uniqueArray(
  fc.record({ name: fc.string({ minLength: 1, maxLength: 12 }), dtype: fc.constantFrom(...dtypes), shape: fc.array(fc.nat(5), { maxLength: 3 }) }),
  { selector: (t) => t.name, maxLength: 6 },
);

const wildValue = fc.oneof(fc.jsonValue(), fc.constant(new RawJson("[".repeat(5000) + "]".repeat(5000))));
const wildEntry = fc.record({
  dtype: fc.oneof(fc.constantFrom(...dtypes), fc.string({ maxLength: 5 }), wildValue),
  shape: fc.oneof(fc.array(fc.oneof(fc.nat(8), fc.integer(), fc.double(), fc.constant(2 ** 53), fc.constant(2 ** 31)), { maxLength: 4 }), wildValue),
  data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.array(fc.integer(), { maxLength: 3 }), wildValue),
}, { requiredKeys: [] });

fuzz("parseHeader: arbitrary bytes throw nothing but LoraDropError", () => check(
  fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(1000), (bytes, extra) => {
    typed(() => parseHeader("fuzz.safetensors", bytes, 8 + bytes.length, 8 + bytes.length + extra));
  }),
));

fuzz("parseHeader: wild and tweaked headers throw nothing but LoraDropError; what it accepts is contiguous and sized", () => check(
  fc.property(
    validTensors, fc.oneof({ arbitrary: fc.constant([]), weight: 3 }, fc.array(fc.tuple(fc.string({ maxLength: 6 }), wildEntry), { minLength: 1, maxLength: 3 })), fc.nat(16), fc.option(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer()))),
    fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, fc.constant(true)), fc.integer({ min: -2, max: 2 }),
    (valid, wild, extraData, metadata, repeat, lengthDelta) => {
      const entries: Entry[] = [];
      let offset = 0;
      for (const t of valid) {
        const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]!;
        entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }]);
        offset += bytes;
      }
      for (const w of wild) entries.splice(w[0].length % (entries.length + 1), 0, w);
      if (metadata) entries.push(["__metadata__", metadata]);
      if (repeat && entries.length > 0) entries.push(entries[0]!);
      const header = Buffer.from(headerText(entries));
      const dataLen = Math.max(0, offset + (extraData % 3 === 0 ? lengthDelta : 0));
      const idx = typed(() => parseHeader("fuzz.safetensors", header, 8 + header.length, 8 + header.length + dataLen));
      if (!idx) return;
      const keys = entries.map(([k]) => (k instanceof RawJson ? JSON.parse(k.text) : k));
      assert.equal(new Set(keys).size, keys.length, "a header with a repeated key is never accepted");
      // Empty tensors may share an offset with the next one: order by begin, then end.
      const sorted = [...idx.tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
      let pos = 0;
      for (const t of sorted) {
        assert.equal(t.begin, pos);
        assert.equal(t.end - t.begin, t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]!);
        pos = t.end;
      }
      assert.equal(pos, dataLen);
    },
  ),
), 1);

test("findDuplicateKey finds exactly the repeats in objects up to depth 2", () => check(
  fc.property(
    fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "ab"), fc.boolean(),
      fc.oneof(fc.constant(null), fc.array(fc.tuple(fc.constantFrom("x", "y", "z"), fc.boolean(), fc.option(fc.array(fc.constantFrom("p", "q"), { maxLength: 3 })))))), { maxLength: 6 }),
    (spec) => {
      // A key written plainly or with its first letter escaped: both are the same key.
      const keyText = (k: string, esc: boolean) => (esc ? `"\\u00${k.charCodeAt(0).toString(16)}${k.slice(1)}"` : JSON.stringify(k));
      const objText = (keys: string[]) => `{${keys.map((k, i) => `${JSON.stringify(k)}:${i}`).join(",")}}`;
      let expected = new Set(spec.map(([k]) => k)).size !== spec.length;
      const parts = spec.map(([k, esc, inner]) => {
        let v = "1";
        if (inner) {
          if (new Set(inner.map(([x]) => x)).size !== inner.length) expected = true;
          // Depth-3 objects may repeat keys freely: they are not looked at.
          v = `{${inner.map(([x, e2, deep]) => `${keyText(x, e2)}:${deep ? objText(deep) : "[]"}`).join(",")}}`;
        }
        return `${keyText(k, esc)}:${v}`;
      });
      const text = `{${parts.join(",")}}`;
      JSON.parse(text);
      assert.equal(findDuplicateKey(text) !== undefined, expected, text);
    },
  ),
));

fuzz("readSafetensorsIndex + readTensorF32: mutated files throw nothing but LoraDropError", () => {
  const base = encodeSafetensors([
    { name: "a.weight", dtype: "F32", shape: [3, 4], data: new Float32Array(12).map((_, i) => i) },
    { name: "b.weight", dtype: "F16", shape: [5], data: new Float32Array(5).fill(0.5) },
    { name: "c.weight", dtype: "BF16", shape: [2, 3], data: new Float32Array(6).fill(-2) },
  ], { format: "pt" });
  const file = path.join(dir, "mutated.safetensors");
  const dataStart = 8 + Number(base.readBigUInt64LE(0));
  return check(fc.property(fc.nat(), fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), (seed, dataOnly, flips) => {
    // Either a mutation family plus random byte flips anywhere, or flips in the data section only (still valid).
    const bytes = Buffer.from(dataOnly ? base : randomMutation(new Rng(seed), base).bytes);
    const [from, span] = dataOnly ? [dataStart, bytes.length - dataStart] : [0, bytes.length];
    for (const [at, v] of flips) if (span > 0) bytes[from + (at % span)] = v;
    fs.writeFileSync(file, bytes);
    typed(() => {
      const idx = readSafetensorsIndex(file);
      for (const [name, t] of idx.tensors) {
        const r = readTensorF32(idx, name);
        assert.equal(r.data.length, t.shape.reduce((a, b) => a * b, 1));
      }
    });
  }));
}, 1);

test("round trip: random tensors encode and read back (F32 exactly, F16/BF16 within rounding)", () => {
  const file = path.join(dir, "roundtrip.safetensors");
  const tensor = fc.record({
    dtype: fc.constantFrom("F32" as const, "F16" as const, "BF16" as const),
    shape: fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }),
    values: fc.array(fc.float(), { minLength: 64, maxLength: 64 }),
  });
  return check(fc.property(fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), tensor), { selector: ([n]) => n, minLength: 1, maxLength: 5 }), (ts) => {
    const tensors: TensorToWrite[] = ts.map(([name, t]) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      return { name, dtype: t.dtype, shape: t.shape, data: Float32Array.from(t.values.slice(0, n)) };
    });
    fs.writeFileSync(file, encodeSafetensors(tensors));
    const idx = readSafetensorsIndex(file);
    assert.equal(idx.tensors.size, tensors.length);
    for (const t of tensors) {
      const got = readTensorF32(idx, t.name);
      assert.deepEqual(got.shape, t.shape);
      (t.data as Float32Array).forEach((x, i) => assert.ok(closeEnough(got.data[i]!, x, t.dtype as "F32"), `${t.name}[${i}] (${t.dtype}): ${got.data[i]} for ${x}`));
    }
  }));
});

/** Whether `got` is what storing `x` in `dtype` may give: the nearest representable value (ties either way). */
function closeEnough(got: number, x: number, dtype: "F32" | "F16" | "BF16"): boolean {
  if (Number.isNaN(x)) return Number.isNaN(got);
  if (dtype === "F32") return Object.is(got, x);
  // Mantissa bits and the smallest normal exponent of each format; beyond the largest finite value it rounds to ±Inf.
  const [bits, minExp, max] = dtype === "F16" ? [10, -14, 65504] : [7, -126, 3.3895313892515355e38];
  const halfUlpMax = 2 ** (Math.floor(Math.log2(max)) - bits - 1);
  if (!Number.isFinite(x) || Math.abs(x) >= max + halfUlpMax) return got === (x > 0 ? Infinity : -Infinity);
  if (x === 0) return got === 0;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), minExp);
  const halfUlp = 2 ** (e - bits - 1);
  return Math.abs(got - x) <= halfUlp && (got === 0 || Math.sign(got) === Math.sign(x));
}

fuzz("loadAdapter: damaged adapters throw nothing but LoraDropError; what it accepts matches the model", () => {
  const model = parseModelConfig("config.json", { model_type: "llama", hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 3, intermediate_size: 32, vocab_size: 64 });
  const adapterDir = path.join(dir, "adapter");
  fs.mkdirSync(adapterDir, { recursive: true });
  // A consistent adapter first (targets, layers, rank, dtype), then up to three random damages.
  const plan = fc.record({
    modules: fc.subarray([...DECODER_MODULES], { minLength: 1 }),
    layers: fc.subarray([0, 1, 2], { minLength: 1 }),
    r: fc.integer({ min: 1, max: 4 }),
    alpha: fc.integer({ min: 1, max: 32 }),
    regexTargets: fc.boolean(),
    useRslora: fc.boolean(),
    dtype: fc.constantFrom("F32", "F16", "BF16"),
  });
  const names = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(
    "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", "base_model.model.model.layers.01.self_attn.q_proj.lora_A.weight",
    "base_model.model.model.layers.0.mlp.q_proj.lora_B.weight", "base_model.model.model.layers.0.self_attn.fc1.lora_A.weight",
    "base_model.model.lm_head.lora_A.weight", "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
    "base_model.model.lora_drop.shared.q_proj.lora_A.weight", "base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"));
  const damage = fc.oneof(
    fc.record({ kind: fc.constant("config" as const), key: fc.constantFrom("r", "lora_alpha", "target_modules", "layers_to_transform", "rank_pattern", "alpha_pattern", "peft_type", "bias", "use_dora", "lora_drop", "fan_in_fan_out"),
      value: fc.oneof(fc.jsonValue(), fc.constantFrom("(", "(.*)*x", ".*", "q_proj", -1, 0, 2, null, { q_proj: 2 }, { "(": 1 }, [0, 5])) }),
    fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("reshape" as const), at: fc.nat(), dim: fc.nat(2), value: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ kind: fc.constant("rename" as const), at: fc.nat(), name: names }),
    fc.record({ kind: fc.constant("dtype" as const), at: fc.nat(), dtype: fc.constantFrom(...dtypes) }),
    fc.record({ kind: fc.constant("add" as const), name: names, shape: fc.array(fc.nat(20), { maxLength: 3 }) }),
  );
  return check(fc.property(plan, fc.array(damage, { maxLength: 3 }), (p, damages) => {
    const cfg: Record<string, unknown> = {
      peft_type: "LORA", r: p.r, lora_alpha: p.alpha, bias: "none", use_rslora: p.useRslora,
      target_modules: p.regexTargets ? `.*\\.(${p.modules.join("|")})` : p.modules,
      layers_to_transform: p.layers.length === 3 ? null : p.layers,
    };
    const ts: { name: string; dtype: string; shape: number[] }[] = [];
    for (const layer of p.layers) {
      for (const m of p.modules) {
        const d = moduleDims(model, m);
        const parent = ["gate_proj", "up_proj", "down_proj"].includes(m) ? "mlp" : "self_attn";
        ts.push({ name: `base_model.model.model.layers.${layer}.${parent}.${m}.lora_A.weight`, dtype: p.dtype, shape: [p.r, d.in] });
        ts.push({ name: `base_model.model.model.layers.${layer}.${parent}.${m}.lora_B.weight`, dtype: p.dtype, shape: [d.out, p.r] });
      }
    }
    for (const d of damages) {
      const t = ts.length > 0 && "at" in d ? ts[d.at % ts.length]! : undefined;
      if (d.kind === "config") cfg[d.key] = d.value;
      else if (d.kind === "drop" && t) ts.splice(ts.indexOf(t), 1);
      else if (d.kind === "reshape" && t) t.shape[d.dim % Math.max(1, t.shape.length)] = d.value;
      else if (d.kind === "rename" && t) t.name = d.name;
      else if (d.kind === "dtype" && t) t.dtype = d.dtype;
      else if (d.kind === "add") ts.push({ name: d.name, dtype: "F32", shape: d.shape });
    }
    const entries: Entry[] = [];
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const t of ts) {
      const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]!;
      entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }]);
      chunks.push(Buffer.alloc(bytes, 0x3c));
      offset += bytes;
    }
    fs.writeFileSync(path.join(adapterDir, "adapter_config.json"), JSON.stringify(cfg));
    fs.writeFileSync(path.join(adapterDir, "adapter_model.safetensors"), assemble(headerText(entries), Buffer.concat(chunks)));
    const adapter = typed(() => loadAdapter(adapterDir, model));
    if (!adapter) return;
    assert.ok(adapter.loras.length > 0);
    for (const l of adapter.loras) {
      const d = moduleDims(model, l.module);
      assert.ok(l.layer >= 0 && l.layer < model.numLayers);
      assert.equal(l.inFeatures, d.in);
      assert.equal(l.outFeatures, d.out);
      assert.equal(l.A.length, l.r * d.in);
      assert.equal(l.B.length, d.out * l.r);
      assert.ok(Number.isFinite(l.scale));
    }
    if (damages.length === 0) assert.equal(adapter.loras.length, p.layers.length * p.modules.length, "an undamaged adapter loads every pair");
  }));
}, 1);
