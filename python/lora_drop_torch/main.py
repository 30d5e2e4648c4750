"""Runs one request: checks the libraries, resolves device and dtype, dispatches the command, and turns every way
of ending into one protocol line (result, typed error, CANCELLED, or INTERNAL with the traceback on stderr)."""
import sys
import traceback

from . import deps, protocol, request, signals
from .errors import Cancelled, EngineError, oom_error

EXIT_DONE, EXIT_BUG, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130


def main(argv):
    """Entry point; returns the exit status."""
    protocol.open_channel()
    signals.install()
    # The process group, once joined, is left in every case (filled in by run()).
    held = {}
    try:
        if len(argv) != 1:
            raise EngineError("INVALID_ARGUMENT", "usage: python -m lora_drop_torch REQUEST.json")
        versions = deps.check()
        req = request.read(argv[0])
        return run(req, versions, held)
    except Cancelled:
        protocol.error("CANCELLED", "cancelled")
        return EXIT_CANCELLED
    except EngineError as e:
        protocol.error(e.code, e.message, e.file, e.field)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 (every failure must become a protocol line)
        typed = oom_error(e)
        if typed:
            protocol.error(typed.code, typed.message, typed.file, typed.field)
            return EXIT_ERROR
        traceback.print_exc(file=sys.stderr)
        text = str(e).strip().splitlines()
        protocol.error("INTERNAL", f"{type(e).__name__}: {text[0][:300] if text else ''} (the Python traceback is in "
                       "the log)")
        return EXIT_BUG
    finally:
        world = held.get("world")
        if world is not None:
            try:
                world.close()
            except Exception:  # noqa: BLE001 (a broken group must not hide the answer already sent)
                traceback.print_exc(file=sys.stderr)


def run(req, versions, held):
    """Dispatches a checked request; puts the data-parallel World in `held` for main() to close."""
    import torch

    from . import evaluate, lora_sets, profile, train
    from .distributed import World
    from .modeling import DTYPES, resolve_device, resolve_dtype

    world = World.from_env()
    held["world"] = world
    protocol.set_rank(world.rank, world.answers)
    threads = req.get("threads", int, required=False)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(req.choice("device", ("auto", "cuda", "mps", "cpu"), "auto"), world.local_rank)
    dtype = resolve_dtype(req.choice("dtype", tuple(DTYPES), "float32"), device)
    protocol.log(f"torch {versions['torch']}, transformers {versions['transformers']}, peft {versions['peft']}; "
                 f"{device} {str(dtype).split('.')[-1]}" + (f", rank {world.rank} of {world.size}" if world.size > 1
                                                            else ""))
    command = req.choice("command", request.COMMANDS)
    if command in ("profile", "evaluate", "evaluate-sets"):
        if world.size > 1:
            raise EngineError("INVALID_ARGUMENT", f"{command} runs in one process; start it without WORLD_SIZE > 1",
                              field="WORLD_SIZE")
        handler = {"profile": profile, "evaluate": evaluate, "evaluate-sets": lora_sets}[command]
        result = handler.run(req, device, dtype)
    else:
        world.init(device)
        result = train.run(req, device, dtype, world)
    result.update(peak_memory(device))
    protocol.send(result)
    return EXIT_DONE


def peak_memory(device):
    """This process's peak memory for the result line: resident bytes (Linux reports KiB, macOS bytes), and on
    CUDA the most the device's allocator held."""
    import resource

    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peakRssBytes": int(rss if sys.platform == "darwin" else rss * 1024)}
    if device.type == "cuda":
        out["gpuPeakBytes"] = int(torch.cuda.max_memory_allocated(device))
    return out
