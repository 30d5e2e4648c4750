/**
 * The head of a streamed causal-LM run: the final RMSNorm and the LM head at the loss's target rows, then the
 * weighted cross-entropy of trainGraph.ts (the same loss `train` reports), and for training d loss / d hidden.
 * Its weights (the LM head is the largest tensor) are read by a reader of their own, closed by `close`, so a
 * caller holds them only while it runs the head.
 */
import type * as Ort from "onnxruntime-node";
import { GraphBuilder } from "../onnx/builder";
import { Ops } from "../onnx/ops";
import { buildBackward } from "../onnx/autodiff";
import { HfModel } from "../models/hfModel";
import { Batch } from "../data/batch";
import { createSession, DeviceChoice, f32Tensor, i64Tensor, ort } from "../runtime/session";
import { lossTargets, weightedCrossEntropy } from "../runtime/lossSession";
import { LayerWeightReader } from "./layerWeights";

/** The compiled head: its session and the names of its values. */
interface HeadGraph { session: Ort.InferenceSession; hidden: string; norm: string; head: string; rows: string; labels: string; weights: string; loss: string; dHidden?: string }

/** The loss over a run's batches and, for a head built with gradients, d loss / d hidden per batch. */
export interface HeadResult {
  loss: number;
  dHidden?: Float32Array[];
}

/** A compiled streamed head; `run` reads its weights on first use and keeps them until `releaseWeights`. */
export class StreamHead {
  private feeds: Record<string, Ort.Tensor> | undefined;

  private constructor(private readonly model: HfModel, private readonly g: HeadGraph) {}

  /** Builds the head session; with `gradient` it also returns d loss / d hidden. */
  static async create(model: HfModel, opts: { device: DeviceChoice; threads?: number }, gradient: boolean): Promise<StreamHead> {
    const cfg = model.config;
    const g = new GraphBuilder();
    const o = new Ops(g);
    const hidden = g.input("hidden", "float32", ["batch*seq", cfg.hiddenSize]);
    const norm = g.input("w.norm", "float32", [cfg.hiddenSize]);
    const head = g.input("w.lm_head", "float32", [cfg.vocabSize, cfg.hiddenSize]);
    const rows = g.input("logit_rows", "int64", ["rows"]);
    const labels = g.input("labels", "int64", ["rows"]);
    const weights = g.input("loss_weights", "float32", ["rows"]);
    // The same RMSNorm as models/llama.ts, on the target rows only.
    const x = o.gather(hidden, rows);
    const inv = o.reciprocal(o.sqrt(o.add(o.reduceMean(o.mul(x, x), [-1]), g.f32(cfg.rmsNormEps))));
    const logits = o.gemm(o.mul(o.mul(x, inv), norm), head, { transB: true });
    const ce = weightedCrossEntropy(g, logits, labels, weights);
    const loss = ce.loss;
    g.output(loss);
    let dHidden: string | undefined;
    if (gradient) {
      dHidden = buildBackward(g, logits, [hidden], ce.gradient()).get(hidden) ?? undefined;
      if (!dHidden) throw new Error("the loss does not reach the hidden states");
      g.output(dHidden);
    }
    const { session } = await createSession(g.toBytes(), { device: opts.device, shardFiles: [], threads: opts.threads });
    return new StreamHead(model, { session, hidden, norm, head, rows, labels, weights, loss, ...(dHidden ? { dHidden } : {}) });
  }

  /** The summed loss of `batches` (their last hidden states in `hidden`), each weighted by 1/`denominator`. */
  async run(batches: Batch[], hidden: Float32Array[], denominator: number): Promise<HeadResult> {
    const feeds = this.feeds ?? (this.feeds = this.readWeights());
    const H = this.model.config.hiddenSize;
    let loss = 0;
    const dHidden: Float32Array[] = [];
    for (let bi = 0; bi < batches.length; bi++) {
      const batch = batches[bi]!;
      const t = lossTargets(batch, denominator);
      if (t.rows.length === 0) {
        if (this.g.dHidden) dHidden.push(new Float32Array(batch.batch * batch.seq * H));
        continue;
      }
      feeds[this.g.hidden] = f32Tensor(hidden[bi]!, [batch.batch * batch.seq, H]);
      feeds[this.g.rows] = i64Tensor(t.rows, [t.rows.length]);
      feeds[this.g.labels] = i64Tensor(t.labels, [t.rows.length]);
      feeds[this.g.weights] = new (ort().Tensor)("float32", t.weights, [t.rows.length]);
      const out = await this.g.session.run(feeds);
      loss += (out[this.g.loss]!.data as Float32Array)[0]!;
      if (this.g.dHidden) dHidden.push(out[this.g.dHidden]!.data as Float32Array);
    }
    return this.g.dHidden ? { loss, dHidden } : { loss };
  }

  /** Lets the head's weights go (the next `run` reads them again). */
  releaseWeights(): void {
    this.feeds = undefined;
  }

  /** Releases the weights and the session. */
  async close(): Promise<void> {
    this.feeds = undefined;
    await this.g.session.release();
  }

  private readWeights(): Record<string, Ort.Tensor> {
    const cfg = this.model.config;
    const H = cfg.hiddenSize;
    const reader = new LayerWeightReader(this.model);
    try {
      const tied = cfg.tieWordEmbeddings || !this.model.weights.has("lm_head.weight");
      return {
        [this.g.norm]: f32Tensor(reader.read("model.norm.weight", [H], "head.norm"), [H]),
        [this.g.head]: f32Tensor(reader.read(tied ? "model.embed_tokens.weight" : "lm_head.weight", [cfg.vocabSize, H], "head.lm_head"), [cfg.vocabSize, H]),
      };
    } finally {
      reader.close();
    }
  }
}
