/**
 * The `gradient` importance criterion, for comparison with LoRA-drop's output criterion: each layer is scored by
 * the squared norm of the loss's gradient (causal-LM, or a classifier's class cross-entropy through its saved head)
 * with respect to its LoRA parameters,
 * g_i = Σ over batches and modules of ‖∂L/∂A_i‖² + ‖∂L/∂B_i‖², with L the mean loss of the batch. It runs the
 * training graph (loss + LoRA gradients) without updating anything, and writes a profile without per-token norms.
 */
import { batchesOf, makeBatch } from "../data/batch";
import { slotOf } from "../runtime/loraRunner";
import { assembleProfile, loadProfileInputs, zeroTable } from "./assemble";
import { PROFILE_DEFAULTS, type OnnxProfileOptions } from "./options";
import { ProfileFile } from "./profileSchema";
import { RunContext } from "../util/progress";
import { LoraDropError, throwIfCancelled } from "../util/errors";
import { LossSession, paramsOf } from "../runtime/lossSession";
import { isEncoder } from "../models/arch";
import { withAdapterHead } from "../adapter/adapterHead";
import { ownParam } from "../adapter/loraModule";

/** Profiles an adapter with the gradient criterion. */
export async function profileGradient(opts: OnnxProfileOptions, ctx: RunContext = {}): Promise<ProfileFile> {
  const started = Date.now();
  // A sequence classifier's loss goes through the head the adapter saved (modules_to_save), as training did.
  const { model, adapter, examples } = loadProfileInputs(opts, (base, a) => (isEncoder(base.config.architecture) ? withAdapterHead(base, a) : base));
  if (model.config.head === "seq-cls") {
    const unlabelled = examples.find((e) => e.label === undefined);
    if (unlabelled) throw new LoraDropError("DATASET_INVALID", `example ${unlabelled.example + 1} has no \`label\`: the gradient criterion on a sequence classifier needs the class of every example`, opts.dataPath, "label");
  }
  const L = model.config.numLayers;
  const modules = adapter.modules;
  // Every module gets its own parameter here, even where a LoRA-drop adapter shares one, so each layer's gradient
  // is measured on its own (a shared parameter's gradient would be the sum over its layers).
  const loras = adapter.loras.map((l) => ({ ...l, param: ownParam(l.layer, l.module) }));
  const params = paramsOf(loras);
  const perModuleRaw = zeroTable(modules, L);
  throwIfCancelled(ctx.signal, "profile");

  const session = await LossSession.create(model, loras.map(slotOf), { gradients: true, dropout: false, device: opts.device ?? "auto", threads: opts.threads, log: ctx.log });
  const totalTokens = examples.reduce((a, e) => a + e.ids.length, 0);
  let targetsSeen = 0;
  try {
    let done = 0;
    for (const group of batchesOf(examples, opts.batchSize ?? PROFILE_DEFAULTS.batchSize)) {
      throwIfCancelled(ctx.signal, "profile");
      const batch = makeBatch(group);
      const targets = session.countTargets(batch);
      targetsSeen += targets;
      if (targets > 0) {
        const { grads } = await session.run(batch, targets, params);
        for (const l of loras) {
          const g = grads!.get(l.param)!;
          let s = 0;
          for (const v of g.A) s += v * v;
          for (const v of g.B) s += v * v;
          perModuleRaw[l.module]![l.layer]! += s;
        }
      }
      done += group.reduce((a, e) => a + e.ids.length, 0);
      const secs = (Date.now() - started) / 1000;
      ctx.progress?.report({ step: done, total: totalTokens, message: `gradients: ${done}/${totalTokens} tokens`, tokensPerSecond: done / Math.max(secs, 1e-3) });
    }
  } finally {
    await session.dispose();
  }
  // With nothing to predict the loss is empty and every gradient zero: a profile of zeros would rank nothing.
  if (targetsSeen === 0) {
    throw new LoraDropError("DATASET_INVALID", `none of the ${examples.length} examples has a token to predict (each is one token long, or its completion is cut off), so every gradient is zero; use longer examples or --criterion output`, opts.dataPath);
  }
  for (const [module, perLayer] of Object.entries(perModuleRaw)) {
    const layer = perLayer.findIndex((g) => !Number.isFinite(g));
    if (layer >= 0) {
      throw new LoraDropError("NUMERICAL", `the gradient norm of layer ${layer} ${module} is ${perLayer[layer]}: NaN or Inf in the adapter, the model, or the loss`, opts.adapterDir, `layers.${layer}.${module}`);
    }
  }

  return assembleProfile({ opts, model, adapter, examples, criterion: "gradient", device: session.device, perModuleRaw, started });
}
