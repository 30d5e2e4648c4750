"""Data-parallel training over torch.distributed (gloo on the CPU, nccl on CUDA), env:// rendezvous.

Started by torchrun, `accelerate launch` or N plain processes with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and
LOCAL_RANK set. Every rank holds the whole step plan and takes its contiguous share of every micro-batch; each rank's
loss is its share's sum of loss terms divided by the WHOLE step's number of terms, so summing the gradients over
ranks (one all-reduce per optimiser step) gives exactly one process's gradient for the same global batch. This is
what DistributedDataParallel computes, done once per step by hand: a rank's share of a micro-batch may be empty
(a short last batch), which DDP's per-backward hooks cannot express.

Every rank holds the whole model. `accelerate launch` with an FSDP or DeepSpeed configuration would let each rank
believe its model is sharded while it is not, so such a launch is refused rather than run as plain data parallelism.
"""
import math
import os

import torch

from .errors import EngineError


#: Variables `accelerate launch` sets for a sharded run, and what each names.
SHARDING_VARIABLES = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


class World:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    def __init__(self, rank=0, size=1, local_rank=0):
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.initialised = False

    @staticmethod
    def from_env():
        """Reads WORLD_SIZE, RANK and LOCAL_RANK (as torchrun sets them)."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise EngineError("INVALID_ARGUMENT", "WORLD_SIZE, RANK and LOCAL_RANK must be integers", field="WORLD_SIZE")
        if size < 1 or not 0 <= rank < size:
            raise EngineError("INVALID_ARGUMENT", f"RANK {rank} is not within WORLD_SIZE {size}", field="RANK")
        for var, what in SHARDING_VARIABLES.items():
            if os.environ.get(var, "").lower() == "true":
                raise EngineError("INVALID_ARGUMENT", f"accelerate was configured for {what}, which the torch engine "
                                  "does not run: it trains data-parallel, every process holding the whole model. "
                                  "Launch with a plain multi-GPU accelerate configuration (or --launcher local or "
                                  "torchrun); a model too big for one GPU needs dtype bfloat16 or a larger GPU",
                                  field="launcher")
        return World(rank, size, local)

    @property
    def answers(self):
        """True for the process that answers for its node (local rank 0)."""
        return self.local_rank == 0

    def init(self, device):
        """Joins the process group (env:// rendezvous) when there is more than one process."""
        if self.size == 1:
            return
        import torch.distributed as dist

        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise EngineError("INVALID_ARGUMENT", f"{var} is not set for a run of WORLD_SIZE {self.size}", field=var)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, init_method="env://", rank=self.rank, world_size=self.size)
        self.initialised = True

    def share(self, group):
        """This rank's contiguous share of a micro-batch (possibly empty)."""
        k = math.ceil(len(group) / self.size)
        return group[self.rank * k:(self.rank + 1) * k]

    def sum_gradients(self, params, loss):
        """Sums the parameters' gradients and the loss over ranks, in one flat all-reduce; returns the summed loss."""
        if self.size == 1:
            return loss
        import torch.distributed as dist

        grads = [p.grad for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads] + [torch.tensor([0.0], device=grads[0].device)])
        flat[-1] = loss
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n
        return float(flat[-1])

    def sum_values(self, values):
        """Every rank's list of floats summed element-wise (the same list on every rank)."""
        if self.size == 1:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return [float(x) for x in t.cpu()]

    def gather(self, obj):
        """Every rank's `obj`, on every rank (small objects: the random generators' states)."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        """Waits for every rank."""
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()

    def close(self):
        """Leaves the process group."""
        if self.initialised:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.initialised = False
