"""Training checkpoints: one safetensors file holding the trained tensors, AdamW's moments, every rank's random
generator state and (in its metadata) the step, the losses so far and the fingerprint of the run's settings.
One file replaced atomically (os.replace) is complete or absent whenever the process dies. A resumed run restores
all of it, so it continues bit for bit as the uninterrupted run would have."""
import json
import os
import struct

import torch

from .errors import EngineError
from .outputs import load_tensors, save_tensors

FILE = "torch-checkpoint.safetensors"
VERSION = 1
STATE_KEY = "lora_drop.checkpoint"


def save(directory, state, named, optimizer, rng_states):
    """Writes the checkpoint: `state` (JSON-able), the tensors `named` [(key, param)] with their AdamW moments, and
    `rng_states` (one dict of uint8 tensors per rank)."""
    tensors = {}
    for key, p in named:
        tensors[f"param.{key}"] = p.detach().float()
        st = optimizer.state.get(p)
        if st:
            tensors[f"adam.m.{key}"] = st["exp_avg"].float()
            tensors[f"adam.v.{key}"] = st["exp_avg_sq"].float()
    for rank, states in enumerate(rng_states):
        for name, t in states.items():
            tensors[f"rng.{rank}.{name}"] = t
    os.makedirs(directory, exist_ok=True)
    save_tensors(os.path.join(directory, FILE), tensors, {STATE_KEY: json.dumps({"version": VERSION, **state})})


def restore(directory, fingerprint, named, optimizer, rank):
    """Restores a checkpoint into the parameters and the optimiser; returns (state, this rank's generator states),
    or None when there is no checkpoint. A checkpoint of other settings is refused, naming the first that differs."""
    path = os.path.join(directory, FILE)
    if not os.path.exists(path):
        return None
    state = read_state(path)
    for key, value in fingerprint.items():
        if json.dumps(state["fingerprint"].get(key), sort_keys=True) != json.dumps(value, sort_keys=True):
            raise EngineError("INVALID_ARGUMENT", f"the checkpoint was made with {key} = "
                              f"{json.dumps(state['fingerprint'].get(key))}, not {json.dumps(value)}; resume with the "
                              "same settings or start afresh without resume", path, key)
    tensors = load_tensors(path)

    def take(name, like):
        t = tensors.get(name)
        if t is None:
            raise EngineError("TENSOR_MISSING", f"the checkpoint has no tensor {name}", path, name)
        if t.shape != like.shape:
            raise EngineError("SAFETENSORS_SHAPE_MISMATCH", f"{name} has shape {list(t.shape)}, expected "
                              f"{list(like.shape)}", path, name)
        return t.to(device=like.device, dtype=like.dtype)

    with torch.no_grad():
        for key, p in named:
            p.copy_(take(f"param.{key}", p))
            if f"adam.m.{key}" in tensors:
                optimizer.state[p] = {
                    "step": torch.tensor(float(state["adamStep"])),
                    "exp_avg": take(f"adam.m.{key}", p).float(),
                    "exp_avg_sq": take(f"adam.v.{key}", p).float(),
                }
    prefix = f"rng.{rank}."
    rng = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return state, rng


def read_state(path):
    """The JSON state in a checkpoint's safetensors metadata (read from the header alone)."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n).decode("utf-8"))
        state = json.loads(header["__metadata__"][STATE_KEY])
    except (OSError, ValueError, KeyError, struct.error) as e:
        raise EngineError("CONFIG_INVALID", f"not a torch-engine checkpoint ({e})", path)
    if state.get("version") != VERSION:
        raise EngineError("CONFIG_INVALID", f"checkpoint version {state.get('version')!r} is not supported (this "
                          f"version reads {VERSION})", path, "version")
    return state


def rng_state(device):
    """The random generators that LoRA dropout draws from (the CPU's, and the device's on CUDA)."""
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(states, device):
    """Restores what rng_state saved."""
    if "cpu" in states:
        torch.set_rng_state(states["cpu"].to(torch.uint8))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"].to(torch.uint8), device)
