/**
 * RoBERTa and BERT sequence classifiers with LoRA as an ONNX graph: word + learned position + token-type
 * embeddings, post-LayerNorm encoder layers with bidirectional attention (padding keys masked), exact (erf) GELU,
 * biases everywhere, and the classification head on the first token (<s> / [CLS]):
 * RobertaForSequenceClassification: classifier.dense → tanh → classifier.out_proj;
 * BertForSequenceClassification: bert.pooler.dense → tanh → classifier.
 * Logits are [batch, num_labels]. Sentence pairs come through the tokenizer's pair template; BERT's token types
 * are an input (token_type_ids), RoBERTa has a single type.
 */
import { GraphBuilder } from "../onnx/builder";
import type { HfModel } from "./hfModel";
import { TOKENS, type ForwardGraph, type ForwardOptions, type LoraSlot } from "./forward";
import { ForwardBlocks } from "./blocks";

/** Builds the encoder forward pass (and, with `logits`, the classification head) into `g`. */
export function buildEncoderForward(g: GraphBuilder, model: HfModel, slots: LoraSlot[], opts: ForwardOptions): ForwardGraph {
  const cfg = model.config;
  const arch = cfg.architecture;
  const b = new ForwardBlocks(g, model, slots, opts);
  const { o, w } = b;
  const H = cfg.hiddenSize, nH = cfg.numHeads, D = cfg.headDim, I = cfg.intermediateSize, eps = cfg.layerNormEps ?? 1e-12;
  const e = `${arch}.embeddings`;

  // Position ids. RoBERTa (create_position_ids_from_input_ids): real tokens count up from padding_idx+1 and padding
  // tokens get padding_idx, so they depend on input_ids, not on the attention mask. BERT: 0…seq-1.
  let pos: string;
  if (arch === "roberta") {
    const pad = BigInt(cfg.padTokenId ?? 1);
    const padT = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(pad) });
    const isPad = g.node("Equal", [b.inputIds, padT], [{ dtype: "bool", shape: ["batch", "seq"] }])[0]!;
    const real = o.cast(g.node("Not", [isPad], [{ dtype: "bool", shape: ["batch", "seq"] }])[0]!, "int64");
    const axis = g.constant({ dtype: "int64", dims: [], data: BigInt64Array.of(1n) });
    const counted = g.node("CumSum", [real, axis], [{ dtype: "int64", shape: ["batch", "seq"] }])[0]!;
    pos = g.node("Add", [g.node("Mul", [counted, real], [{ dtype: "int64", shape: ["batch", "seq"] }])[0]!, padT], [{ dtype: "int64", shape: ["batch", "seq"] }])[0]!;
  } else {
    pos = b.arange();
  }
  const words = w.embeddingRows(`${e}.word_embeddings.weight`, [cfg.vocabSize, H], b.inputIds);
  const positions = w.embeddingRows(`${e}.position_embeddings.weight`, [cfg.maxPositions ?? 512, H], pos);
  // BERT's segment embeddings: token_type_ids (0 for the first sentence of a pair, 1 for the second) are an input.
  // RoBERTa has one type (type_vocab_size 1) and never feeds them, as RobertaTokenizer leaves them out.
  const types = cfg.typeVocabSize ?? 2;
  const typeTable = w.weight(`${e}.token_type_embeddings.weight`, [types, H]);
  const tokenTypeIds = arch === "bert" && types > 1 ? g.input("token_type_ids", "int64", ["batch", "seq"]) : undefined;
  const tokenType = tokenTypeIds ? o.gather(typeTable, tokenTypeIds) : o.slice(typeTable, 0, 0, 1);
  let h = b.layerNorm(o.reshape(o.add(o.add(words, positions), tokenType), [-1, H], [TOKENS, H]), `${e}.LayerNorm`, H, eps);

  const bias = b.keyPaddingBias();
  const numLayers = opts.numLayers ?? cfg.numLayers;
  for (let i = 0; i < numLayers; i++) {
    const p = `${arch}.encoder.layer.${i}`;
    const lin = (x: string, module: string, inF: number, outF: number) => b.linear(x, i, module, `${p}.${module}`, inF, outF);
    const q = lin(h, "attention.self.query", H, H);
    const k = lin(h, "attention.self.key", H, H);
    const v = lin(h, "attention.self.value", H, H);
    const attn = lin(b.attention(q, k, v, nH, D, bias), "attention.output.dense", H, H);
    h = b.layerNorm(o.add(attn, h), `${p}.attention.output.LayerNorm`, H, eps);
    const out = lin(b.geluErf(lin(h, "intermediate.dense", H, I)), "output.dense", I, H);
    h = b.layerNorm(o.add(out, h), `${p}.output.LayerNorm`, H, eps);
  }

  let logits: string | undefined;
  if (opts.logits) {
    // Rows b·seq of the flat states are the sequences' first tokens (a Gather on axis 0, which the autodiff handles).
    const first = o.gather(h, b.firstTokenRows());
    // The classifier (PEFT's modules_to_save) may be trained; BERT's pooler stays frozen, as under PEFT.
    const dense = (x: string, name: string, outF: number, head: boolean) => {
      const weight = (n: string, shape: number[]) => (head ? b.headWeight(n, shape) : w.weight(n, shape));
      return o.gemm(x, weight(`${name}.weight`, [outF, H]), { transB: true, c: weight(`${name}.bias`, [outF]) });
    };
    const L = cfg.numLabels ?? 2;
    logits = arch === "roberta"
      ? dense(o.tanh(dense(first, "classifier.dense", H, true)), "classifier.out_proj", L, true)
      : dense(o.tanh(dense(first, "bert.pooler.dense", H, false)), "classifier", L, true);
  }
  const out = b.finish(logits);
  if (tokenTypeIds) out.tokenTypeIds = tokenTypeIds;
  return out;
}
