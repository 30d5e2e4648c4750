"""The libraries the engine needs, checked before any work, with the minimum versions it relies on.

- torch 1.13: torch.cuda.OutOfMemoryError, torch.distributed's env:// rendezvous with gloo and nccl,
  all_gather_object.
- transformers 4.37: Qwen2 (the newest architecture supported), Auto classes with torch_dtype.
- peft 0.7: use_rslora, rank_pattern and alpha_pattern, PeftModel.from_pretrained(config=...), per-adapter
  lora_A / lora_B / scaling dictionaries on LoRA layers.
- safetensors 0.3: safetensors.torch.save_file / load_file.
"""
import importlib
import re
import sys

from .errors import EngineError

#: (import name, minimum release, pip name)
REQUIRED = [
    ("torch", (1, 13), "torch"),
    ("transformers", (4, 37), "transformers"),
    ("peft", (0, 7), "peft"),
    ("safetensors", (0, 3), "safetensors"),
]


def release(version):
    """The numeric release of a version string: "1.13.0a0" → (1, 13, 0), "0.4.5+shim" → (0, 4, 5)."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version))
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def check():
    """Imports each library and checks its version; raises MISSING_DEPENDENCY naming what to install."""
    found = {}
    for name, minimum, pip_name in REQUIRED:
        want = ".".join(str(p) for p in minimum)
        install = f"{sys.executable} -m pip install '{pip_name}>={want}'"
        try:
            module = importlib.import_module(name)
        except Exception as e:  # an ImportError, or a broken install failing in its own import code
            detail = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            raise EngineError("MISSING_DEPENDENCY",
                              f"{name} cannot be imported by {sys.executable} ({detail}); install it with: {install}")
        version = getattr(module, "__version__", "0")
        if release(version) < minimum:
            raise EngineError("MISSING_DEPENDENCY",
                              f"{name} {version} is too old for the torch engine (needs {want} or newer); "
                              f"upgrade it with: {install}")
        found[name] = str(version)
    return found
