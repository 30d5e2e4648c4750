/**
 * A profile's importance must follow from its raw values: per layer the modules' sum, normalised to 1 (all zero
 * only when every raw value is). A hand-edited profile that breaks either is PROFILE_INVALID naming the field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateProfile } from "../../../../extension/core/importance/profileFile";
import { LoraDropError } from "../../../../extension/core/util/errors";

function profile(): Record<string, unknown> {
  const q = [1, 2, 1], v = [3, 0, 1];
  return {
    schema: "lora-drop.profile", version: 1, created: "2025-01-01T00:00:00Z", criterion: "output", device: "cpu",
    model: { path: "/m", architecture: "llama", num_layers: 3, hidden_size: 8, vocab_size: 16 },
    adapter: { path: "/a", r: 2, lora_alpha: 4, target_modules: ["q_proj", "v_proj"], params: { q_proj: [32, 32, 32], v_proj: [32, 32, 32] }, total_params: 192 },
    settings: { data: "/d", max_examples: 4, max_tokens: 8 }, layers: [0, 1, 2], modules: ["q_proj", "v_proj"], sequences: [],
    importance: { per_layer_raw: [4, 2, 2], per_layer: [0.5, 0.25, 0.25], per_module_raw: { q_proj: q, v_proj: v }, per_module: { q_proj: [0.25, 0.5, 0.25], v_proj: [0.75, 0, 0.25] } },
    timing: { seconds: 1, tokens: 8, tokens_per_second: 8 },
  };
}

test("a consistent profile passes, all-zero raw values included", () => {
  validateProfile(profile(), "p.json");
  const zero = profile();
  zero.importance = { per_layer_raw: [0, 0, 0], per_layer: [0, 0, 0], per_module_raw: { q_proj: [0, 0, 0], v_proj: [0, 0, 0] }, per_module: { q_proj: [0, 0, 0], v_proj: [0, 0, 0] } };
  validateProfile(zero, "p.json");
});

test("importance that does not follow from the raw values is PROFILE_INVALID naming the field", () => {
  const edits: [string, (imp: Record<string, unknown> & { per_layer: number[] }, p: Record<string, unknown>) => void, RegExp][] = [
    ["importance.per_layer", (i) => { i.per_layer = i.per_layer.map((x) => x * 1.1); }, /sums to 1.1/],
    ["importance.per_layer", (i) => { i.per_layer = [0.25, 0.5, 0.25]; }, /per_layer\[0\] is 0.25 but its raw value gives 0.5/],
    ["importance.per_module.v_proj", (i) => { (i.per_module as Record<string, number[]>).v_proj = [0.25, 0, 0.75]; }, /per_module.v_proj\[0\] is 0.25/],
    ["importance.per_layer_raw", (i) => { i.per_layer_raw = [4, 2, 3]; }, /per_layer_raw\[2\] is 3 but the modules' raw values sum to 2/],
    ["importance.per_layer", (i) => { i.per_layer = [0, 0, 0]; }, /sums to 0, not 1/],
    ["criterion", (_i, p) => { p.criterion = "magic"; }, /criterion "magic" is unknown \(known: output, gradient, weight, ablation\)/],
    ["layers", (_i, p) => { p.layers = [0, 0, 1]; }, /distinct/],
  ];
  for (const [field, edit, re] of edits) {
    const p = profile();
    edit(p.importance as Record<string, unknown> & { per_layer: number[] }, p);
    assert.throws(() => validateProfile(p, "/x/p.json"), (e: unknown) => e instanceof LoraDropError && e.code === "PROFILE_INVALID" && e.file === "/x/p.json" && e.field === field && re.test(e.message), `${field}: ${re}`);
  }
});
