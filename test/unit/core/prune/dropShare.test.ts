/**
 * LoRA-drop's selection as prune applies it (candidates, per module, from a profile), the structure it builds,
 * the PEFT config that expresses a drop, and the lora_drop record's validation — against hand computations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { selectAmong, selectPerModule, selectByRule, paramsAfter } from "../../../../extension/core/importance/selection";
import { selectFromProfile, buildDropShare, dropConfig } from "../../../../extension/core/prune/dropShare";
import { parseLoraDropRecord, bindSharedPairs, recordMetadata, layersFor } from "../../../../extension/core/adapter/dropRecord";
import { parseLoraConfig, isTargeted, moduleName } from "../../../../extension/core/adapter/peftAdapter";
import { ProfileFile } from "../../../../extension/core/importance/profileSchema";
import { LoraDropError } from "../../../../extension/core/util/errors";
import { LoraModule, countLoraParams, ownParam } from "../../../../extension/core/adapter/loraModule";

function lora(layer: number, module: string, value: number, r = 2, n = 3, m = 4): LoraModule {
  return { layer, module, r, scale: 2, inFeatures: n, outFeatures: m, A: new Float32Array(r * n).fill(value), B: new Float32Array(m * r).fill(1), param: ownParam(layer, module) };
}

/** A profile with only what selection reads. */
function profile(perLayer: number[], perModule: Record<string, number[]>, params: Record<string, number[]>): ProfileFile {
  return {
    layers: perLayer.map((_, i) => i), modules: Object.keys(perModule), criterion: "output",
    importance: { per_layer: perLayer, per_layer_raw: perLayer, per_module: perModule, per_module_raw: perModule },
    adapter: { params }, model: { path: "/nowhere" },
  } as unknown as ProfileFile;
}

test("selection among candidates: non-LoRA layers take no part and importance is renormalised", () => {
  // Candidates 0, 2, 3 with importance 0.1, 0.5, 0.2 → renormalised 0.125, 0.625, 0.25. Ranked: 2, 3, 0.
  // T = 0.8: 0.625 < 0.8, 0.875 ≥ 0.8 → keep 2 and 3; share 0. Layer 1 (0.2, not a candidate) is neither.
  const imp = [0.1, 0.2, 0.5, 0.2];
  const s = selectAmong(imp, [0, 2, 3], { threshold: 0.8 });
  assert.deepEqual(s.kept, [2, 3]);
  assert.deepEqual(s.shared, [0]);
  assert.ok(Math.abs(s.coverage - 0.875) < 1e-12);
  assert.deepEqual(selectAmong(imp, [0, 2, 3], { keep: 1 }).kept, [2]);
  assert.deepEqual(selectAmong(imp, [0, 2, 3], { keep: 9 }).shared, [], "keep above the candidate count keeps them all");
  assert.deepEqual(selectAmong(imp, [], { threshold: 0.5 }), { kept: [], shared: [], coverage: 0 });
  assert.deepEqual(selectByRule([0.3, 0.7], { keep: 1 }).kept, [1]);
});

test("per-module selection applies the rule to each module's own importance", () => {
  const perModule = { q_proj: [0.6, 0.3, 0.1], v_proj: [0.05, 0.15, 0.8] };
  const s = selectPerModule(perModule, { q_proj: [0, 1, 2], v_proj: [0, 1, 2] }, { threshold: 0.85 });
  // q: 0.6 → 0.9 ≥ 0.85: keep 0, 1. v: 0.8 → 0.95: keep 2, 1.
  assert.deepEqual(s.q_proj!.kept, [0, 1]);
  assert.deepEqual(s.v_proj!.kept, [1, 2]);
  assert.deepEqual(s.v_proj!.shared, [0]);
});

test("parameter counts with per-module kept lists", () => {
  const params = { q_proj: [10, 10, 10], v_proj: [6, 6, 6] };
  // q keeps 0 (10) + one shared (10); v keeps 1, 2 (12) + one shared (6): 38 of 48.
  assert.deepEqual(paramsAfter(params, { q_proj: [0], v_proj: [1, 2] }, "share"), { before: 48, after: 38, reduction: 1 - 38 / 48 });
  assert.equal(paramsAfter(params, { q_proj: [0], v_proj: [1, 2] }, "drop").after, 22);
});

test("selectFromProfile picks the hand-computed layers and refuses a profile of another adapter", () => {
  const loras = [0, 1, 2, 3].flatMap((l) => [lora(l, "q_proj", l + 1), lora(l, "v_proj", l + 1)]);
  const each = 2 * (3 + 4);
  const p = profile([0.4, 0.05, 0.35, 0.2], { q_proj: [0.1, 0.1, 0.7, 0.1], v_proj: [0.7, 0.0, 0.1, 0.2] }, { q_proj: [each, each, each, each], v_proj: [each, each, each, each] });
  const adapter = { loras, modules: ["q_proj", "v_proj"], dir: "adapter" };
  // Ranked 0 (0.4), 2 (0.75), 3 (0.95 ≥ 0.9): keep 0, 2, 3; share 1.
  const s = selectFromProfile(p, adapter, { threshold: 0.9 });
  assert.deepEqual(s.kept, [0, 2, 3]);
  assert.deepEqual(s.shared, [1]);
  const pm = selectFromProfile(p, adapter, { keep: 2 }, true);
  assert.deepEqual(pm.kept, { q_proj: [0, 2], v_proj: [0, 3] }, "ties break towards the lower layer");
  assert.deepEqual(pm.shared, { q_proj: [1, 3], v_proj: [1, 2] });
  const other = profile([0.4, 0.05, 0.35, 0.2], p.importance.per_module, { q_proj: [each, each, each, 99], v_proj: [each, each, each, each] });
  assert.throws(() => selectFromProfile(other, adapter, { threshold: 0.9 }), (e: unknown) => e instanceof LoraDropError && e.code === "PROFILE_INVALID" && /layer 3 q_proj/.test(e.message));
});

test("buildDropShare: kept layers untouched, shared layers bound to one pair per module, drop removes them", () => {
  const loras = [0, 1, 2].flatMap((l) => [lora(l, "q_proj", l + 1), lora(l, "v_proj", 10 * (l + 1))]);
  const adapter = { loras, modules: ["q_proj", "v_proj"] };
  const { loras: out, sharedInit } = buildDropShare(adapter, { kept: [1], shared: [0, 2] }, "share");
  assert.equal(out.length, 6);
  const q0 = out.find((l) => l.layer === 0 && l.module === "q_proj")!;
  const q2 = out.find((l) => l.layer === 2 && l.module === "q_proj")!;
  assert.equal(q0.param, "shared.q_proj");
  assert.equal(q0.A, q2.A, "one array for the shared layers");
  assert.deepEqual(out.find((l) => l.layer === 1 && l.module === "v_proj")!.A, loras[3]!.A);
  // Every pair is rank 1 here (B is all ones, A constant), so the rank-2 approximation keeps all of the energy.
  assert.ok(sharedInit.every((s) => Math.abs(s.energyKept - 1) < 1e-9));
  // Before: 6 pairs × 14 = 84. After: 2 kept pairs + 2 shared = 4 × 14.
  assert.equal(countLoraParams(out), 56);
  const dropped = buildDropShare(adapter, { kept: [1], shared: [0, 2] }, "drop").loras;
  assert.deepEqual(dropped.map((l) => l.layer), [1, 1]);
  const odd = [...loras.slice(0, 4), { ...lora(2, "q_proj", 1), r: 2, scale: 4 }, loras[5]!];
  assert.throws(() => buildDropShare({ loras: odd, modules: adapter.modules }, { kept: [1], shared: [0, 2] }, "share"), /different ranks or scales/);
});

test("a per-module drop is a target_modules regex that matches exactly the kept modules", () => {
  const kept = { q_proj: [0, 2], down_proj: [1] };
  const extra = dropConfig({ kept, perModule: true }, ["q_proj", "v_proj", "down_proj"]);
  const cfg = parseLoraConfig("adapter_config.json", { r: 2, lora_alpha: 4, ...extra });
  for (const layer of [0, 1, 2, 3]) {
    for (const m of ["q_proj", "v_proj", "down_proj"]) {
      assert.equal(isTargeted(cfg, layer, m), layersFor(kept, m).includes(layer), `layer ${layer} ${m}`);
    }
  }
  assert.deepEqual(dropConfig({ kept: [3, 1], perModule: false }, ["q_proj"]), { layers_to_transform: [3, 1] });
});

test("the lora_drop record is validated and mirrored as JSON strings", () => {
  const rec = parseLoraDropRecord("c.json", { kept_layers: [0], shared_layers: [1, 2], threshold: 0.9, mode: "share", importance: [0.9, 0.05, 0.05] })!;
  assert.equal(rec.format, "peft");
  assert.equal(rec.keep, null);
  assert.equal(recordMetadata(rec)["lora_drop.shared_layers"], "[1,2]");
  assert.equal(parseLoraDropRecord("c.json", undefined), undefined);
  const bad = (raw: unknown, re: RegExp) => assert.throws(() => parseLoraDropRecord("c.json", raw), (e: unknown) => e instanceof LoraDropError && e.code === "ADAPTER_INVALID" && re.test(e.message));
  bad({ kept_layers: [0, 1], shared_layers: [1] }, /layer 1 is both kept and shared/);
  bad({ kept_layers: [0], shared_layers: { q_proj: [1] } }, /both be lists/);
  bad({ kept_layers: "0", shared_layers: [1] }, /kept_layers/);
  bad({ kept_layers: [0], shared_layers: [1], mode: "merge" }, /mode/);
});

test("binding shared pairs requires identical copies", () => {
  const rec = parseLoraDropRecord("c.json", { kept_layers: [0], shared_layers: [1, 2] })!;
  const same = [lora(0, "q_proj", 1), lora(1, "q_proj", 5), lora(2, "q_proj", 5)];
  bindSharedPairs(rec, same, "w.safetensors");
  assert.equal(same[1]!.param, "shared.q_proj");
  assert.equal(same[1]!.A, same[2]!.A);
  assert.equal(same[0]!.param, "L0.q_proj");
  const differ = [lora(0, "q_proj", 1), lora(1, "q_proj", 5), lora(2, "q_proj", 6)];
  assert.throws(() => bindSharedPairs(rec, differ, "w.safetensors"), /layer 2 differs from that of layer 1/);
});

test("the per-module drop regex names every architecture's modules, dots escaped, and full-matches only the kept ones", () => {
  const cases: { arch: "gpt2" | "roberta" | "llama"; modules: string[]; kept: Record<string, number[]> }[] = [
    { arch: "gpt2" as const, modules: ["attn.c_attn", "mlp.c_fc"], kept: { "attn.c_attn": [0, 2], "mlp.c_fc": [1] } },
    { arch: "roberta" as const, modules: ["attention.self.query", "attention.self.value"], kept: { "attention.self.query": [1], "attention.self.value": [0, 2] } },
    { arch: "llama" as const, modules: ["q_proj", "down_proj"], kept: { q_proj: [2], down_proj: [0, 1] } },
  ];
  for (const c of cases) {
    const re = new RegExp(`^(?:${dropConfig({ kept: c.kept, perModule: true }, c.modules, c.arch).target_modules as string})$`);
    for (let layer = 0; layer < 3; layer++) {
      for (const m of c.modules) {
        const full = moduleName(layer, m, c.arch);
        assert.equal(re.test(full), c.kept[m]!.includes(layer), `${c.arch} ${full}`);
        // An unescaped dot would let any character stand in for it.
        assert.equal(re.test(full.replace(/\.([^.]*)$/, "X$1")), false, `${c.arch} ${full} with a dot replaced`);
      }
    }
    if (c.arch === "gpt2") assert.ok(re.test("h.0.attn.c_attn"), "a bare GPT2Model's names match too");
  }
});
