"""The `train` command: LoRA training with the onnx engine's semantics (extension/core/train/train.ts).

- The step plan comes from the Node side: the example indices of every micro-batch of every optimiser step, from
  its seeded data order, so both engines see the same batches.
- A step's loss is the sum of its micro-batches' loss terms divided by the step's number of terms (target tokens,
  or examples for a classifier); gradients accumulate over the micro-batches, are clipped by global norm and applied
  by torch.optim.AdamW (betas 0.9/0.999, eps 1e-8) at the rate of transformers' schedule for that step.
- LoRA-drop's shared layers use ONE nn.Parameter pair per module, bound before the optimiser is built.
- Only LoRA dropout is stochastic: the base model runs in eval mode, as in the onnx engine.
- The output is a safetensors file of the trained tensors (`{param}.A`, `{param}.B`, `head.{weight name}`, float32)
  that the Node side writes as the adapter; nothing is written when the loss or the weights stop being finite. The
  first process of every node writes it to its own node's output folder: each node's Node side goes on with it
  (the pipeline's next phases), and only node 0's writes the adapter.
- With `evalBatches`, the mean loss over those batches with the trained values and dropout off follows (the
  pipeline's loss on the training set), shared over the ranks like the training batches.
"""
import hashlib
import json
import math
import os
import time

import torch

from . import checkpoint, protocol
from .data import Batch, count_targets, read_examples
from .errors import EngineError, oom_error
from .modeling import attach_lora, bind_shared, head_parameters, load_model, lora_config, lora_modules, loss_sum
from .outputs import save_tensors

#: transformers' scheduler names for the Node side's schedule kinds (its "constant" keeps the warm-up).
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
#: Offset of the dropout generator's seed from the run's seed (train.ts seeds its dropout generator likewise).
DROPOUT_SEED_OFFSET = 2_000_003


def run(req, device, dtype, world):
    """Trains; returns the result line (rank 0) after writing the tensors file."""
    from transformers import get_scheduler

    task = req.choice("task", ("causal-lm", "seq-cls"))
    examples = read_examples(req.get("examples", str))
    plan = req.get("plan", list)
    total = len(plan)
    if total == 0:
        raise EngineError("INVALID_ARGUMENT", "the step plan is empty", req.path, "plan")
    seed = req.get("seed", int, 42)
    same_run_everywhere(req, plan, world)
    init_dir = req.get("initAdapter", str, required=False)
    source = init_dir or req.path
    pad = req.get("padTokenId", int, 0)

    model = load_model(req.get("model", str), task, device, dtype)
    torch.manual_seed(seed)
    peft_model = attach_lora(model, lora_config(req.get("loraConfig", dict), False, source), init_dir, True, device)
    pairs = lora_modules(peft_model, req.get("loras", list), source)
    shared = bind_shared(pairs, init_dir is not None, source)
    head = head_parameters(peft_model) if task == "seq-cls" else {}
    if not req.get("trainHead", bool, True):
        head = {}
    named = [(f"{n}.{w}", p) for n, (a, b) in shared.items() for w, p in (("A", a), ("B", b))]
    named += [(f"head.{k}", p) for k, p in head.items()]
    params = [p for _, p in named]
    chosen = {id(p) for p in params}
    for p in peft_model.parameters():
        p.requires_grad_(id(p) in chosen)
    for _, m in pairs:
        m.lora_dropout.train()

    base_lr = req.number("lr")
    optimizer = torch.optim.AdamW(params, lr=base_lr, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=req.number("weightDecay", 0))
    schedule = get_scheduler(SCHEDULES[req.choice("schedule", tuple(SCHEDULES), "linear")], optimizer,
                             num_warmup_steps=req.get("warmupSteps", int, 0), num_training_steps=total)
    rate = schedule.lr_lambdas[0]
    max_norm = req.number("maxGradNorm", 0)

    torch.manual_seed(seed + DROPOUT_SEED_OFFSET)
    every = req.get("checkpointEvery", int, 0)
    ck_dir = req.get("checkpointDir", str, required=False)
    fingerprint = req.get("fingerprint", dict, {})
    start, losses, tokens = 0, [], 0
    if req.get("resume", bool, False) and ck_dir:
        start, losses, tokens = resume_from(ck_dir, fingerprint, named, optimizer, world, device, total)

    loop_start, tokens_run = time.time(), 0
    for step in range(start, total):
        micro = [[examples[i] for i in group] for group in plan[step]]
        denominator = max(1, sum(count_targets(g, task) for g in micro))
        loss = 0.0
        for group in micro:
            mine = world.share(group)
            if mine:
                try:
                    part = loss_sum(peft_model, Batch(mine, pad, device), task) / denominator
                    part.backward()
                except RuntimeError as e:
                    raise oom_error(e, f"at step {step + 1}") or e
                loss += float(part.detach())
            n_tok = sum(len(e.ids) for e in group)
            tokens, tokens_run = tokens + n_tok, tokens_run + n_tok
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        loss = world.sum_gradients(params, loss)
        n = step + 1
        if not math.isfinite(loss):
            raise EngineError("NUMERICAL", f"step {n}: the loss is {loss}; lower the learning rate or check the data",
                              req.get("data", str, req.path), "step")
        grad_norm = clip(params, max_norm)
        if not math.isfinite(grad_norm):
            raise EngineError("NUMERICAL", f"step {n}: the gradient norm is {grad_norm}; lower the learning rate or "
                              "check the data", req.get("data", str, req.path), "step")
        lr = base_lr * rate(step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # One device-to-host sync for every tensor at once; which one went bad is looked up only when one did.
        finite = bool(torch.stack([torch.isfinite(p).all() for _, p in named]).all())
        bad = None if finite else next(k for k, p in named if not bool(torch.isfinite(p).all()))
        if bad:
            raise EngineError("NUMERICAL", f"step {n}: {bad} is not finite after the update; lower the learning rate",
                              req.get("data", str, req.path), "step")
        losses.append({"step": n, "loss": loss, "lr": lr})
        elapsed = max(time.time() - loop_start, 1e-3)
        protocol.send({"type": "step", "step": n, "totalSteps": total, "loss": loss, "lr": lr, "gradNorm": grad_norm,
                       "tokensPerSecond": tokens_run / elapsed})
        if every > 0 and ck_dir and n % every == 0 and n < total:
            save_checkpoint(ck_dir, world, device, named, optimizer,
                            {"step": n, "totalSteps": total, "fingerprint": fingerprint, "losses": losses,
                             "tokens": tokens, "adamStep": n})

    eval_batches = req.get("evalBatches", list, required=False)
    final_eval = None
    if eval_batches is not None:
        for _, m in pairs:
            m.lora_dropout.eval()
        final_eval = mean_loss(peft_model, [[examples[i] for i in g] for g in eval_batches], task, pad, device, world)
    trained = {k: p.detach().float() for k, p in named}
    out_file = os.path.join(req.get("outputDir", str), "tensors.safetensors")
    if world.answers:
        save_tensors(out_file, trained)
    world.barrier()
    lora_count = sum(p.numel() for k, p in named if not k.startswith("head."))
    result = {"type": "result", "command": "train", "device": device.type, "dtype": str(dtype).split(".")[-1],
              "tensorsFile": out_file, "steps": total, "losses": losses, "tokens": tokens,
              "trainableParams": lora_count, "headParams": sum(p.numel() for p in head.values()),
              "worldSize": world.size}
    if final_eval is not None:
        result["finalEvalLoss"] = final_eval
    return result


def mean_loss(model, groups, task, pad, device, world):
    """The mean loss over every loss term of `groups`, no gradients; each rank computes its share of each group."""
    total = sum(count_targets(g, task) for g in groups)
    if total == 0:
        raise EngineError("DATASET_EMPTY", "no example has a token to predict", field="evalBatches")
    summed = 0.0
    with torch.no_grad():
        for group in groups:
            mine = world.share(group)
            if mine and count_targets(mine, task) > 0:
                summed += float(loss_sum(model, Batch(mine, pad, device), task))
    summed = world.sum_values([summed])[0]
    if not math.isfinite(summed):
        raise EngineError("NUMERICAL", f"the loss over the training examples is {summed} after training",
                          field="finalEval")
    return summed / total


def same_run_everywhere(req, plan, world):
    """Refuses a data-parallel run whose processes were given different LoRA structures or step plans (different
    commands or files on different nodes; in a pipeline, nodes whose profiles chose different layers): their
    gradient exchanges would not match, and they would hang or sum unrelated values."""
    if world.size == 1:
        return
    what = json.dumps([req.get("loras", list), plan, req.get("seed", int, 42)], sort_keys=True)
    digests = world.gather(hashlib.sha256(what.encode("utf-8")).hexdigest())
    if len(set(digests)) > 1:
        raise EngineError("INVALID_ARGUMENT", "the processes of this run were given different LoRA structures or "
                          "step plans; run the same command on the same files on every node (in a pipeline, the "
                          "nodes' profiles chose different layers: give every node the same hardware and software)",
                          req.path, "loras")


def resume_from(ck_dir, fingerprint, named, optimizer, world, device, total):
    """Restores the checkpoint in `ck_dir`, if there is one; returns (steps done, losses so far, tokens so far)."""
    start, losses, tokens = 0, [], 0
    restored = checkpoint.restore(ck_dir, fingerprint, named, optimizer, world.rank)
    if restored:
        state, rng = restored
        start, losses, tokens = state["step"], state["losses"], state["tokens"]
        if rng:
            checkpoint.set_rng_state(rng, device)
        elif world.rank == 0:
            protocol.log("the checkpoint has no generator state for this rank: LoRA dropout masks will differ "
                         "from the uninterrupted run", "warn")
        protocol.log(f"resuming from {ck_dir} at step {start} of {total}")
    else:
        protocol.log(f"no checkpoint in {ck_dir}; starting from step 0")
    # Each rank reads the checkpoint itself; ranks that see different ones (a folder local to one machine) would
    # train different models.
    if len(set(world.gather(start))) > 1:
        raise EngineError("INVALID_ARGUMENT", "the ranks found different checkpoints; put the checkpoint folder on "
                          "storage every machine shares", ck_dir, "checkpointDir")
    return start, losses, tokens


def clip(params, max_norm):
    """Clips the gradients to a global norm of `max_norm` (torch's clip_grad_norm_; 0: no clipping); returns the
    norm before clipping."""
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.norm(torch.stack([p.grad.detach().float().norm(2) for p in params]), 2))


def save_checkpoint(directory, world, device, named, optimizer, state):
    """Every rank's generator state goes to rank 0, which writes the checkpoint; the others wait for it."""
    rng = world.gather(checkpoint.rng_state(device))
    if world.rank == 0:
        checkpoint.save(directory, state, named, optimizer, rng)
        protocol.log(f"checkpoint at step {state['step']}: {directory}")
    world.barrier()
