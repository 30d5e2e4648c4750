/**
 * CSV exports of the heatmap and the importance table, read back by an independent RFC 4180 reader.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { csvField, heatmapCsv, importanceCsv } from "../../../extension/viewModel/csv";
import { selectLayers } from "../../../extension/viewModel/layerSelection";
import { HOSTILE_TOKENS, makeProfile } from "./fixtures";

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), i++;
    else field += ch;
  }
  return rows;
}

test("heatmapCsv round-trips every value and token exactly", () => {
  const p = makeProfile();
  const rows = parseCsv(heatmapCsv(p, "v_proj", 0));
  assert.deepEqual(rows[0], ["layer", "module", "sequence", "token_index", "token_id", "token", "special", "value"]);
  const seq = p.sequences[0]!;
  assert.equal(rows.length - 1, p.layers.length * seq.tokens.length);
  for (const r of rows.slice(1)) {
    const [layer, module, sequence, t, id, token, special, value] = r;
    assert.equal(module, "v_proj");
    assert.equal(sequence, "0");
    assert.equal(Number(value), p.norms!["v_proj"]![Number(layer)]![0]![Number(t)]);
    assert.equal(Number(id), seq.ids[Number(t)]);
    assert.equal(token, seq.tokens[Number(t)]);
    assert.equal(special, String(seq.special[Number(t)]));
  }
  assert.ok(rows.some((r) => r[5] === HOSTILE_TOKENS.script));
});

test("csvField neutralises spreadsheet formulas and quotes separators", () => {
  assert.equal(csvField("=HYPERLINK(1)"), `"'=HYPERLINK(1)"`);
  assert.equal(csvField("-2"), `"'-2"`);
  assert.equal(csvField('a,"b"'), `"a,""b"""`);
  assert.equal(csvField("plain"), "plain");
  assert.equal(csvField(-2), "-2");
});

test("importanceCsv lists decision, rank and cumulative importance per layer", () => {
  const p = makeProfile({ layers: 7, seed: 3 });
  const rows = parseCsv(importanceCsv(p, 0.6, "drop"));
  const sel = selectLayers(p.importance.per_layer, 0.6);
  assert.equal(rows.length, 8);
  for (const r of rows.slice(1)) {
    const layer = Number(r[0]);
    assert.equal(Number(r[1]), p.importance.per_layer[layer]);
    const rank = Number(r[3]);
    assert.equal(sel.order[rank - 1], layer);
    // The cumulative column is renormalised over the layers that carry a LoRA (here: all of them).
    const total = p.importance.per_layer.reduce((a, b) => a + b, 0);
    let cum = 0;
    for (let k = 0; k < rank; k++) cum += p.importance.per_layer[sel.order[k]!]! / total;
    assert.ok(Math.abs(Number(r[4]) - cum) < 1e-12, `${r[4]} vs ${cum}`);
    assert.equal(r[5], sel.kept[layer] ? "kept" : "dropped");
    assert.equal(Number(r[6]), p.adapter.params["q_proj"]![layer]);
  }
});
