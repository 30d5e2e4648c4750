/**
 * The benchmark's model: a random Llama of TinyLlama-1.1B's shape (fp32, ≈ 4.1 GiB) with a PEFT LoRA adapter,
 * generated once into a cache folder, plus the FLOP count of the passes the benchmark times.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeTinyModel, writeTinyAdapter } from "../../extension/core/demo/tinyModel";
import { ModelConfig } from "../../extension/core/models/config";

/** The model shape and adapter the benchmark uses. */
export interface BenchShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  loraR: number;
  loraAlpha: number;
  loraTargets: string[];
}

/** TinyLlama-1.1B's shape with LoRA r=8 on q_proj/v_proj, the shape of the figures in docs/benchmarks.md. */
export const TINYLLAMA_SHAPE: BenchShape = {
  hiddenSize: 2048, numLayers: 22, numHeads: 32, numKvHeads: 4, intermediateSize: 5632, vocabSize: 32000,
  loraR: 8, loraAlpha: 16, loraTargets: ["q_proj", "v_proj"],
};

/** Where the generated model lives. */
export interface BenchFixture {
  modelDir: string;
  adapterDir: string;
  /** Bytes of all base weights in the safetensors files. */
  weightBytes: number;
}

/** Number of safetensors shards: keeps each under Node's 4 GiB buffer limit and the generator at ~0.5 GiB. */
const SHARDS = 10;

/**
 * Returns the cached benchmark model, generating it first when the cache lacks it or holds another shape.
 * A marker file written last says the folder is complete, so an interrupted generation is redone.
 */
export function ensureBenchModel(cacheDir: string, shape: BenchShape, log: (msg: string) => void): BenchFixture {
  const modelDir = path.join(cacheDir, "model");
  const adapterDir = path.join(cacheDir, "adapter");
  const marker = path.join(cacheDir, "fixture.json");
  const want = JSON.stringify({ ...shape, shards: SHARDS, seed: 1 });
  const have = fs.existsSync(marker) ? fs.readFileSync(marker, "utf8") : "";
  if (have !== want) {
    fs.rmSync(cacheDir, { recursive: true, force: true });
    fs.mkdirSync(cacheDir, { recursive: true });
    log(`generating the benchmark model (${describeShape(shape)}) into ${cacheDir}; this happens once and takes a few minutes`);
    const started = Date.now();
    const cfg = writeTinyModel(modelDir, {
      seed: 1, hiddenSize: shape.hiddenSize, numLayers: shape.numLayers, numHeads: shape.numHeads, numKvHeads: shape.numKvHeads,
      intermediateSize: shape.intermediateSize, vocabSize: shape.vocabSize, tokenizer: false, shards: SHARDS,
    });
    writeTinyAdapter(adapterDir, cfg, { seed: 2, r: shape.loraR, alpha: shape.loraAlpha, targets: shape.loraTargets });
    fs.writeFileSync(marker, want);
    log(`generated in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return { modelDir, adapterDir, weightBytes: safetensorsDataBytes(modelDir) };
}

/** One line describing the shape. */
export function describeShape(s: BenchShape): string {
  return `llama hidden ${s.hiddenSize}, ${s.numLayers} layers, ${s.numHeads}/${s.numKvHeads} heads, intermediate ${s.intermediateSize}, ` +
    `vocab ${s.vocabSize}, fp32; LoRA r=${s.loraR} on ${s.loraTargets.join("/")}`;
}

function safetensorsDataBytes(dir: string): number {
  let total = 0;
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith(".safetensors")) continue;
    const file = path.join(dir, f);
    const fd = fs.openSync(file, "r");
    try {
      const len = Buffer.alloc(8);
      fs.readSync(fd, len, 0, 8, 0);
      total += fs.fstatSync(fd).size - 8 - Number(len.readBigUInt64LE());
    } finally {
      fs.closeSync(fd);
    }
  }
  return total;
}

/** Which parts of the forward pass run. */
export interface PassShape {
  seq: number;
  batch: number;
  /** Decoder layers that run. */
  layers: number;
  /**
   * The profile graph (dead nodes removed, see onnx/deadNodes.ts) runs of its last layer only what leads to that
   * layer's last tap: the LoRA branches, and base projections and attention only where a later target needs them.
   */
  prunedLastLayer?: boolean;
  /** Whether the LM head (final norm + vocab projection) runs. */
  lmHead: boolean;
  /** LoRA modules per layer, with rank. */
  lora: { module: string; r: number }[];
}

/**
 * Floating-point operations of the matmuls of one pass, counted as 2·M·N·K per matmul (the convention of
 * docs/benchmarks.md): projections, LoRA's two thin matmuls, attention scores and context over the full seq×seq
 * matrix (the graph computes it whole and masks), and the LM head when it runs.
 */
export function passFlops(cfg: ModelConfig, p: PassShape): number {
  const M = p.seq * p.batch;
  const H = cfg.hiddenSize, D = cfg.headDim, I = cfg.intermediateSize;
  const dims: Record<string, [number, number]> = {
    q_proj: [H, cfg.numHeads * D], k_proj: [H, cfg.numKvHeads * D], v_proj: [H, cfg.numKvHeads * D],
    o_proj: [cfg.numHeads * D, H], gate_proj: [H, I], up_proj: [H, I], down_proj: [I, H],
  };
  const order = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
  const base = (m: string) => 2 * M * dims[m]![0] * dims[m]![1];
  const attention = 2 * (2 * p.batch * cfg.numHeads * p.seq * p.seq * D);
  let loraFlops = 0;
  for (const l of p.lora) {
    const [k, n] = dims[l.module]!;
    loraFlops += 2 * M * k * l.r + 2 * M * l.r * n;
  }
  const full = order.reduce((s, m) => s + base(m), 0) + attention + loraFlops;
  // The last layer's needs, by the decoder position of its last targeted module: o_proj needs q/k/v and the
  // attention; gate/up need o_proj's output; down_proj needs gate and up.
  const last = Math.max(...p.lora.map((l) => order.indexOf(l.module)));
  const lastLayer = !p.prunedLastLayer ? full : loraFlops +
    (last >= 3 ? base("q_proj") + base("k_proj") + base("v_proj") + attention : 0) +
    (last >= 4 ? base("o_proj") : 0) + (last >= 6 ? base("gate_proj") + base("up_proj") : 0);
  const head = p.lmHead ? 2 * M * H * cfg.vocabSize : 0;
  return full * (p.layers - 1) + lastLayer + head;
}

