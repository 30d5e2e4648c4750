"""Files the engine hands back: safetensors written atomically (a temporary sibling, then os.replace), so a file
that exists is complete whenever the process is stopped."""
import os

from safetensors.torch import load_file, save_file


def save_tensors(path, tensors, metadata=None):
    """Writes {name: tensor} (in each tensor's own dtype) as a safetensors file, atomically."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_tensors(path):
    """Reads a safetensors file onto the CPU."""
    return load_file(path)
