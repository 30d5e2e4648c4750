/**
 * safetensors surgery for the hostile corpus and the fuzzer: a valid file is taken apart into its header entries
 * and data, one seeded mutation is applied, and the file is put back together. Each mutation family knows which
 * error code the strict reader must answer with, from how it built the file (never from running the reader).
 */
import { Rng } from "../../extension/core/util/random";
import { ErrorCode } from "../../extension/core/util/errors";

/** JSON text inserted verbatim where a value or key is expected (deep nesting, escaped keys, duplicate fields). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A header entry: key (or raw key text) and value. */
export type Entry = [string | RawJson, unknown];

/** A safetensors file taken apart. */
export interface StParts {
  entries: Entry[];
  data: Buffer;
}

/** A tensor's fields read back from a valid header, with its position in `entries`. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
  at: number;
}

/** One mutated file and what the reader must say about it. */
export interface StMutation {
  family: string;
  note: string;
  bytes: Buffer;
  expect: ErrorCode;
  /** The reader must refuse it without allocating what the file claims (length fields, element counts). */
  lowMemory?: boolean;
}

/** Element sizes of the dtypes the reader knows. */
export const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** A random element of a list. */
export function pick<T>(rng: Rng, a: readonly T[]): T {
  return a[rng.int(a.length)]!;
}

/** JSON text of a value that may hold RawJson parts. */
export function toJson(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (typeof v === "object" && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(",")}}`;
  return JSON.stringify(v);
}

/** Header text of an entry list; keys may repeat, which a plain object cannot express. */
export function headerText(entries: Entry[]): string {
  return `{${entries.map(([k, v]) => `${k instanceof RawJson ? k.text : JSON.stringify(k)}:${toJson(v)}`).join(",")}}`;
}

/** Length field + header + data. `length` overrides the length field (a lie about the header size). */
export function assemble(header: string | Buffer, data: Buffer, length?: bigint): Buffer {
  const h = typeof header === "string" ? Buffer.from(header, "utf8") : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** Takes a valid safetensors file apart. */
export function splitSafetensors(bytes: Buffer): StParts {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  return { entries: Object.entries(header), data: Buffer.from(bytes.subarray(8 + n)) };
}

/** Puts parts back together. */
export function joinSafetensors(p: StParts, length?: bigint): Buffer {
  return assemble(headerText(p.entries), p.data, length);
}

/** The tensors of valid parts, in data order. */
export function tensorsOf(p: StParts): TensorInfo[] {
  const out: TensorInfo[] = [];
  p.entries.forEach(([k, v], at) => {
    if (k === "__metadata__" || k instanceof RawJson) return;
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out.push({ name: k, dtype: e.dtype, shape: [...e.shape], begin: e.data_offsets[0], end: e.data_offsets[1], at });
  });
  return out.sort((a, b) => a.begin - b.begin);
}

function setTensor(p: StParts, t: TensorInfo, fields: Record<string, unknown>): void {
  const old = p.entries[t.at]![1] as Record<string, unknown>;
  p.entries[t.at] = [t.name, { ...old, ...fields }];
}

function copyParts(base: Buffer): StParts {
  return splitSafetensors(base);
}

/** A list nested `depth` deep, as text (JSON.parse accepts it; a recursive printer does not). */
export function deepList(depth: number): RawJson {
  return new RawJson("[".repeat(depth) + "]".repeat(depth));
}

const INVALID_UTF8: number[][] = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80], [0xfe, 0xfe]];

/** A random sequence of bytes that is not valid UTF-8. */
export function invalidUtf8(rng: Rng): Buffer {
  return Buffer.from(pick(rng, INVALID_UTF8));
}

function withTensors(rng: Rng, base: Buffer, f: (p: StParts, ts: TensorInfo[]) => { note: string; expect: ErrorCode }): { bytes: Buffer; note: string; expect: ErrorCode } {
  const p = copyParts(base);
  const r = f(p, tensorsOf(p));
  return { bytes: joinSafetensors(p), ...r };
}

type Family = (rng: Rng, base: Buffer, i: number) => Omit<StMutation, "family">;

/** The mutation families and how many cases of each the corpus draws. */
export const ST_FAMILIES: Record<string, { count: number; make: Family }> = {
  "truncated": { count: 10, make: (rng, base, i) => {
    const cut = i < 2 ? rng.int(8) : 8 + rng.int(base.length - 8);
    return { bytes: Buffer.from(base.subarray(0, cut)), note: `cut to ${cut} of ${base.length} bytes`, expect: "SAFETENSORS_TRUNCATED", lowMemory: true };
  } },
  "length-past-eof": { count: 6, make: (rng, base) => {
    const p = copyParts(base);
    const h = Buffer.from(headerText(p.entries));
    const len = base.length - 8 + 1 + rng.int(100_000_000 - base.length);
    return { bytes: assemble(h, p.data, BigInt(len)), note: `header length field ${len}`, expect: "SAFETENSORS_TRUNCATED", lowMemory: true };
  } },
  "header-too-large": { count: 8, make: (rng, base, i) => {
    const p = copyParts(base);
    let len = i === 0 ? 100_000_001n : i === 1 ? 2n ** 64n - 1n : 2n ** BigInt(27 + rng.int(37)) + BigInt(rng.int(1 << 30));
    if (len <= 100_000_000n) len += 100_000_000n;
    return { bytes: assemble(headerText(p.entries), p.data, len), note: `header length field ${len}`, expect: "SAFETENSORS_HEADER_TOO_LARGE", lowMemory: true };
  } },
  "header-not-utf8": { count: 8, make: (rng, base) => {
    const p = copyParts(base);
    const h = Buffer.from(headerText(p.entries));
    const t = pick(rng, tensorsOf(p));
    const at = h.indexOf(JSON.stringify(t.name)) + 1 + rng.int(t.name.length);
    const bad = invalidUtf8(rng);
    return { bytes: assemble(Buffer.concat([h.subarray(0, at), bad, h.subarray(at)]), p.data), note: `bytes ${bad.toString("hex")} inside ${t.name}`, expect: "SAFETENSORS_HEADER_INVALID" };
  } },
  "header-not-json": { count: 12, make: (rng, base) => {
    const p = copyParts(base);
    const text = headerText(p.entries);
    const kind = rng.int(5);
    let h: string;
    if (kind === 0) {
      const cut = 1 + rng.int(text.lastIndexOf("}") - 1);
      h = text.slice(0, cut).padEnd(text.length, " ");
    } else if (kind === 1) {
      h = text;
      for (let tries = 0; tries < 50 && isJson(h); tries++) {
        const at = rng.int(text.length);
        h = text.slice(0, at) + pick(rng, ["{", "}", "[", "]", ":", ",", "\"", "x", "0", "\\"]) + text.slice(at + 1);
      }
    } else if (kind === 2) {
      h = pick(rng, ["[]", "null", "42", "\"header\"", "true", "[{\"a\":1}]"]);
    } else if (kind === 3) {
      h = Array.from({ length: 1 + rng.int(64) }, () => String.fromCharCode(32 + rng.int(95))).join("");
      if (isJson(h)) h += "{";
    } else {
      h = pick(rng, ["{'a': 1}", "{\"a\":1,}", "{/*x*/}", "{\"a\":NaN}", "{\"a\":undefined}", "{a:1}", "", "\u0000{}"]);
    }
    return { bytes: assemble(h, p.data), note: `header ${JSON.stringify(h.slice(0, 40))}…`, expect: "SAFETENSORS_HEADER_INVALID" };
  } },
  "duplicate-name": { count: 8, make: (rng, base, i) => {
    const p = copyParts(base);
    const t = pick(rng, tensorsOf(p));
    const value = p.entries[t.at]![1];
    const at = rng.int(p.entries.length + 1);
    if (i % 4 === 3) {
      // A duplicated field inside one entry, not a duplicated tensor.
      const e = value as { dtype: string; shape: number[]; data_offsets: number[] };
      const raw = `{"dtype":"${e.dtype}","shape":${JSON.stringify(e.shape)},"data_offsets":${JSON.stringify(e.data_offsets)},"dtype":"${e.dtype}"}`;
      p.entries[t.at] = [t.name, new RawJson(raw)];
      return { bytes: joinSafetensors(p), note: `dtype twice in ${t.name}`, expect: "SAFETENSORS_HEADER_INVALID" };
    }
    if (i % 4 === 2 && p.entries.some(([k]) => k === "__metadata__")) {
      p.entries.splice(at, 0, ["__metadata__", { format: "pt" }]);
      return { bytes: joinSafetensors(p), note: "__metadata__ twice", expect: "SAFETENSORS_DUPLICATE" };
    }
    // The same name written with an escape is the same key.
    const key = i % 4 === 1 ? new RawJson(`"\\u${t.name.charCodeAt(0).toString(16).padStart(4, "0")}${JSON.stringify(t.name).slice(2)}`) : t.name;
    p.entries.splice(at, 0, [key, value]);
    return { bytes: joinSafetensors(p), note: `${t.name} twice${key instanceof RawJson ? " (escaped)" : ""}`, expect: "SAFETENSORS_DUPLICATE" };
  } },
  "overlapping-offsets": { count: 6, make: (rng, base) => withTensors(rng, base, (p, ts) => {
    const t = ts[1 + rng.int(ts.length - 1)]!;
    const d = 1 + rng.int(t.begin);
    setTensor(p, t, { data_offsets: [t.begin - d, t.end - d] });
    return { note: `${t.name} moved back ${d} bytes`, expect: "SAFETENSORS_BAD_OFFSETS" };
  }) },
  "gap-in-offsets": { count: 5, make: (rng, base) => withTensors(rng, base, (p, ts) => {
    const k = rng.int(ts.length);
    const d = 1 + rng.int(64);
    for (const t of ts.slice(k)) setTensor(p, t, { data_offsets: [t.begin + d, t.end + d] });
    if (rng.next() < 0.5) p.data = Buffer.concat([p.data.subarray(0, ts[k]!.begin), Buffer.alloc(d, 0x5a), p.data.subarray(ts[k]!.begin)]);
    return { note: `${d}-byte gap before ${ts[k]!.name}`, expect: "SAFETENSORS_BAD_OFFSETS" };
  }) },
  "offsets-out-of-range": { count: 5, make: (rng, base) => withTensors(rng, base, (p, ts) => {
    const t = ts[ts.length - 1]!;
    const rows = 1 + rng.int(1000);
    const rowBytes = (t.end - t.begin) / t.shape[0]!;
    setTensor(p, t, { shape: [t.shape[0]! + rows, ...t.shape.slice(1)], data_offsets: [t.begin, t.end + rows * rowBytes] });
    return { note: `${t.name} claims ${rows} rows past the end of the file`, expect: "SAFETENSORS_TRUNCATED" };
  }) },
  "offsets-malformed": { count: 9, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const pool: unknown[] = [[-1, t.end], [t.begin + 0.5, t.end], [String(t.begin), String(t.end)], [t.begin], [t.begin, t.end, t.end],
      null, `${t.begin}-${t.end}`, [2 ** 53, 2 ** 53 + t.end - t.begin], [t.end, t.begin === t.end ? t.begin - 1 : t.begin]];
    const v = pool[i % pool.length];
    setTensor(p, t, { data_offsets: v });
    return { note: `${t.name} data_offsets ${JSON.stringify(v)}`, expect: "SAFETENSORS_BAD_OFFSETS" };
  }) },
  "trailing-bytes": { count: 3, make: (rng, base) => {
    const extra = 1 + rng.int(64);
    return { bytes: Buffer.concat([base, Buffer.alloc(extra, 0x33)]), note: `${extra} bytes after the last tensor`, expect: "SAFETENSORS_BAD_OFFSETS" };
  } },
  "dtype-unknown": { count: 8, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const pool: unknown[] = ["F8_E4M3", "float32", "f32", "", "FP32", 32, null, ["F32"], { dtype: "F32" }];
    const letters = Array.from({ length: 1 + rng.int(6) }, () => String.fromCharCode(65 + rng.int(26))).join("");
    const v = i === 0 ? undefined : i < pool.length ? pool[i] : letters in DTYPE_BYTES ? `${letters}X` : letters;
    const e = { ...(p.entries[t.at]![1] as Record<string, unknown>) };
    if (v === undefined) delete e.dtype;
    else e.dtype = v;
    p.entries[t.at] = [t.name, e];
    return { note: `${t.name} dtype ${JSON.stringify(v)}`, expect: "SAFETENSORS_BAD_DTYPE" };
  }) },
  "dtype-size-mismatch": { count: 5, make: (rng, base) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const other = pick(rng, Object.keys(DTYPE_BYTES).filter((d) => DTYPE_BYTES[d] !== DTYPE_BYTES[t.dtype]));
    setTensor(p, t, { dtype: other });
    return { note: `${t.name} relabelled ${t.dtype} → ${other}`, expect: "SAFETENSORS_SHAPE_MISMATCH" };
  }) },
  "dtype-not-float": { count: 3, make: (rng, base) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const other = pick(rng, Object.keys(DTYPE_BYTES).filter((d) => DTYPE_BYTES[d] === DTYPE_BYTES[t.dtype] && d[0] !== "F" && d !== "BF16"));
    setTensor(p, t, { dtype: other });
    return { note: `${t.name} relabelled ${t.dtype} → ${other}, read as floats`, expect: "SAFETENSORS_BAD_DTYPE" };
  }) },
  "shape-mismatch": { count: 6, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts.filter((x) => x.shape.length > 0));
    const shape = [...t.shape];
    if (i % 3 === 0) shape.push(2 + rng.int(5));
    else if (i % 3 === 1 && shape.length > 1) shape.splice(rng.int(shape.length), 1);
    else {
      const d = rng.int(shape.length);
      shape[d] = Math.max(0, shape[d]! + pick(rng, [-1, 1, 2, 7]));
    }
    setTensor(p, t, { shape });
    return { note: `${t.name} shape [${t.shape}] → [${shape}]`, expect: "SAFETENSORS_SHAPE_MISMATCH" };
  }) },
  "shape-malformed": { count: 7, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const pool: unknown[] = [[-1, ...t.shape.slice(1)], [1.5, 2], t.shape.map(String), null, t.shape.join("x"), [t.shape], { 0: 1 }];
    const v = pool[i % pool.length];
    setTensor(p, t, { shape: v });
    return { note: `${t.name} shape ${JSON.stringify(v)}`, expect: "SAFETENSORS_HEADER_INVALID" };
  }) },
  "shape-overflow": { count: 5, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const shape = i === 0 ? [2 ** 31, 2 ** 31, 2 ** 31] : i === 1 ? [2 ** 53 - 1, 2] : Array.from({ length: 3 + rng.int(4) }, () => 2 ** 20 + rng.int(2 ** 30));
    setTensor(p, t, { shape });
    return { note: `${t.name} shape [${shape}]`, expect: "SAFETENSORS_SHAPE_MISMATCH", lowMemory: true };
  }) },
  "entry-not-object": { count: 5, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const v = [42, "x", null, [], true][i % 5];
    p.entries[t.at] = [t.name, v];
    return { note: `${t.name} entry ${JSON.stringify(v)}`, expect: "SAFETENSORS_HEADER_INVALID" };
  }) },
  "metadata-invalid": { count: 6, make: (_rng, base, i) => {
    const p = copyParts(base);
    const v = [{ a: 1 }, [], "x", { a: { b: "c" } }, null, 5][i % 6];
    p.entries = p.entries.filter(([k]) => k !== "__metadata__");
    p.entries.unshift(["__metadata__", v]);
    return { bytes: joinSafetensors(p), note: `__metadata__ ${JSON.stringify(v)}`, expect: "SAFETENSORS_HEADER_INVALID" };
  } },
  "deep-nesting": { count: 5, make: (rng, base, i) => withTensors(rng, base, (p, ts) => {
    const t = pick(rng, ts);
    const deep = deepList(10_000 + rng.int(200_000));
    const field = ["shape", "dtype", "data_offsets", "entry", "__metadata__"][i % 5]!;
    if (field === "entry") p.entries[t.at] = [t.name, deep];
    else if (field === "__metadata__") p.entries = [["__metadata__", { a: deep }], ...p.entries.filter(([k]) => k !== "__metadata__")];
    else setTensor(p, t, { [field]: deep });
    const expect: ErrorCode = field === "dtype" ? "SAFETENSORS_BAD_DTYPE" : field === "data_offsets" ? "SAFETENSORS_BAD_OFFSETS" : "SAFETENSORS_HEADER_INVALID";
    return { note: `${field} of ${t.name} nested ${deep.text.length / 2} deep`, expect };
  }) },
};

function isJson(text: string): boolean {
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Every mutation family's cases for one base file, drawn from `rng`. */
export function allMutations(rng: Rng, base: Buffer): StMutation[] {
  const out: StMutation[] = [];
  for (const [family, { count, make }] of Object.entries(ST_FAMILIES)) {
    for (let i = 0; i < count; i++) out.push({ family, ...make(rng, base, i) });
  }
  return out;
}

/** One mutation from a random family (for corrupting model shards and adapter weights). */
export function randomMutation(rng: Rng, base: Buffer): StMutation {
  const family = pick(rng, Object.keys(ST_FAMILIES).filter((f) => f !== "dtype-not-float"));
  return { family, ...ST_FAMILIES[family]!.make(rng, base, rng.int(10)) };
}
