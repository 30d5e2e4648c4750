"""The libraries the engine needs, checked before any work, with the minimum versions it relies on.

- torch 1.13: torch.cuda.OutOfMemoryError, torch.distributed's env:// rendezvous with gloo and nccl,
  all_gather_object.
- transformers 4.37: Qwen2 (the newest architecture supported), Auto classes with torch_dtype.
- peft 0.7: use_rslora, rank_pattern and alpha_pattern, PeftModel.from_pretrained(config=...), per-adapter
  lora_A / lora_B / scaling dictionaries on LoRA layers.
- safetensors 0.3: safetensors.torch.save_file / load_file.
- transformers 5 works only with peft 0.18 or newer (transformers' own integration requires it; older PEFT fails
  inside its imports of transformers), so that pairing is checked too.
"""
import importlib
import re
import sys

from .errors import EngineError

#: (transformers release from which, peft release it needs)
PEFT_FOR_TRANSFORMERS = [((5,), (0, 18))]

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
        minimum, why = minimum_for(name, minimum, found)
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
                              f"{name} {version} is too old for the torch engine (needs {want} or newer{why}); "
                              f"upgrade it with: {install}")
        found[name] = str(version)
    return found


def minimum_for(name, minimum, found):
    """The minimum release of `name` given the libraries found so far, and why it is higher than the engine's own."""
    if name == "peft" and "transformers" in found:
        for since, needs in PEFT_FOR_TRANSFORMERS:
            if release(found["transformers"]) >= since and needs > minimum:
                return needs, f" with transformers {found['transformers']}"
    return minimum, ""
