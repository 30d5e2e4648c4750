/**
 * A seeded generator of realistic ProfileFiles for the webview tests (unit and browser). Not a test itself.
 * Importance is derived from the generated norms exactly as the profile format defines it.
 */
import { PROFILE_SCHEMA, PROFILE_VERSION, type ProfileFile } from "../../../extension/core/importance/profileSchema";
import { SWEEP_SCHEMA, SWEEP_VERSION, type SweepFile } from "../../../extension/core/sweep/sweepSchema";
import { distinctThresholds } from "../../../extension/core/sweep/thresholds";
import { countParameters, keptPositions, selectForProfile } from "../../../extension/viewModel/layerSelection";

/** Token strings that must never be interpreted as markup or reorder the display. */
export const HOSTILE_TOKENS = {
  img: "<img src=x onerror=alert(1)>",
  script: "<script>alert(1)</script>",
  bidi: "abc\u202Eevil\u202Cdef",
  long: "▁" + "supercalifragilistic".repeat(30),
} as const;

/** mulberry32: a tiny deterministic PRNG, so every run sees the same profile. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options for makeProfile. */
export interface FakeProfileOptions {
  seed?: number;
  layers?: number;
  modules?: string[];
  /** Token counts, one per sequence. */
  sequenceLengths?: number[];
  criterion?: ProfileFile["criterion"];
  /** Layer positions the adapter does not touch at all: zero parameters and zero norms for every module. */
  noLoraLayers?: number[];
}

const WORDS = ["▁The", "▁model", "▁learns", "▁to", "▁adapt", ",", "▁quickly", ".", "▁LoRA", "▁layers", "\n", "▁and", "▁then"];

/**
 * Builds a profile: norms are log-normal with a per-layer scale (so importance differs between layers);
 * the last layer has no v_proj LoRA (zero params, zero norms) to exercise the "max over shared" rule.
 * Sequence 0 contains the hostile tokens.
 */
export function makeProfile(options: FakeProfileOptions = {}): ProfileFile {
  const rand = seededRandom(options.seed ?? 42);
  const L = options.layers ?? 6;
  const modules = options.modules ?? ["q_proj", "v_proj"];
  const lengths = options.sequenceLengths ?? [12, 9, 7];
  const hidden = 64;
  const r = 4;
  const layerScale = Array.from({ length: L }, () => Math.exp(3 * rand() - 1.5));
  const sequences = lengths.map((n, s) => {
    const tokens: string[] = [];
    const special: boolean[] = [];
    for (let t = 0; t < n; t++) {
      const isBos = t === 0;
      tokens.push(isBos ? "<s>" : (WORDS[Math.floor(rand() * WORDS.length)] as string));
      special.push(isBos);
    }
    if (s === 0) {
      const hostile = Object.values(HOSTILE_TOKENS);
      hostile.forEach((tok, i) => {
        if (2 + i < n) tokens[2 + i] = tok;
      });
    }
    return { ids: tokens.map((_, t) => 1 + ((t * 7919 + s * 31) % 30000)), tokens, special, example: s };
  });
  const noLora = new Set(options.noLoraLayers ?? []);
  const lastLayerHasNo = (m: string, l: number): boolean => noLora.has(l) || (m === "v_proj" && l === L - 1);
  const norms: Record<string, number[][][]> = {};
  for (const m of modules) {
    norms[m] = Array.from({ length: L }, (_, l) =>
      sequences.map((seq) => seq.tokens.map(() => (lastLayerHasNo(m, l) ? 0 : layerScale[l]! * Math.exp(rand() * 2 - 1) * (rand() < 0.05 ? 0 : 1)))),
    );
  }
  const per_module_raw: Record<string, number[]> = {};
  const per_module: Record<string, number[]> = {};
  for (const m of modules) {
    per_module_raw[m] = norms[m]!.map((perSeq) => perSeq.reduce((a, row) => a + row.reduce((b, v) => b + v, 0), 0));
    const total = per_module_raw[m]!.reduce((a, b) => a + b, 0);
    per_module[m] = per_module_raw[m]!.map((v) => (total > 0 ? v / total : 0));
  }
  const per_layer_raw = Array.from({ length: L }, (_, l) => modules.reduce((a, m) => a + per_module_raw[m]![l]!, 0));
  const totalRaw = per_layer_raw.reduce((a, b) => a + b, 0);
  const params: Record<string, number[]> = {};
  for (const m of modules) params[m] = Array.from({ length: L }, (_, l) => (lastLayerHasNo(m, l) ? 0 : r * (hidden + (m === "v_proj" ? hidden / 2 : hidden))));
  const total_params = modules.reduce((a, m) => a + params[m]!.reduce((b, c) => b + c, 0), 0);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  return {
    schema: PROFILE_SCHEMA,
    version: PROFILE_VERSION,
    created: "2026-01-01T00:00:00.000Z",
    criterion: options.criterion ?? "output",
    device: "cpu",
    model: { path: "/models/tiny-llama", architecture: "LlamaForCausalLM", num_layers: L, hidden_size: hidden, vocab_size: 32000 },
    adapter: { path: "/adapters/demo", r, lora_alpha: 8, target_modules: modules, params, total_params },
    settings: { data: "data/sample.jsonl", max_examples: lengths.length, max_tokens: 512 },
    layers: Array.from({ length: L }, (_, i) => i),
    modules,
    sequences,
    norms,
    importance: { per_layer_raw, per_layer: per_layer_raw.map((v) => (totalRaw > 0 ? v / totalRaw : 0)), per_module_raw, per_module },
    timing: { seconds: 1.5, tokens, tokens_per_second: tokens / 1.5 },
  };
}

/**
 * A sweep consistent with `profile`: one point per distinct kept set (the engine's thresholds and selection), each
 * pruned adapter's parameters counted as `prune` counts them (shared pairs once, sized like the largest shared
 * one), and a loss falling from the base model's towards the full adapter's as coverage grows.
 */
export function makeSweep(profile: ProfileFile, options: { mode?: "share" | "drop"; base?: number; full?: number } = {}): SweepFile {
  const mode = options.mode ?? "share";
  const base = options.base ?? 3.2;
  const full = options.full ?? 2.1;
  const candidates: Record<string, number[]> = {};
  for (const m of profile.modules) candidates[m] = profile.layers.map((_, i) => i).filter((i) => (profile.adapter.params[m]![i] ?? 0) > 0);
  const points = distinctThresholds(profile, candidates, false).map((threshold) => {
    const sel = selectForProfile(profile, threshold);
    const kept = keptPositions(sel.kept);
    const counts = countParameters(profile.adapter.params, profile.modules, sel.kept, mode);
    const coverage = sel.cumulative[sel.keptCount - 1] ?? 0;
    const shared = profile.layers.filter((_, i) => sel.candidate[i] && !sel.kept[i]);
    return { threshold, coverage, kept_layers: kept, shared_layers: shared, lora_params: counts.after, loss: full + (base - full) * (1 - coverage) ** 2 };
  }).sort((a, b) => a.lora_params - b.lora_params || a.threshold - b.threshold);
  return {
    schema: SWEEP_SCHEMA, version: SWEEP_VERSION, created: "2026-01-02T00:00:00.000Z",
    model: { path: profile.model.path, architecture: "llama" }, adapter: { path: profile.adapter.path, total_params: profile.adapter.total_params },
    profile: { path: "/work/p.profile.json", criterion: profile.criterion, created: profile.created },
    mode, per_module: false, task: "causal-lm", base_loss: base, full_loss: full, points,
    measured: { data: "data/sample.jsonl", max_examples: 64, max_tokens: 128, examples: 3, tokens: 28, targets: 25, device: "cpu", streamed: false, seconds: 0.8 },
  };
}
