"""Models through transformers' Auto classes and LoRA through PEFT: loading, the LoRA layers the Node side expects,
LoRA-drop's shared pairs, the classification head, and the loss. Nothing here re-implements a model."""
import dataclasses

import torch
import torch.nn.functional as F

from .deps import release
from .errors import EngineError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: PEFT's prefix of the wrapped model's module names (PeftModel.base_model is the LoraModel, .model the HF model).
PEFT_PREFIX = "base_model.model."


def resolve_device(choice, local_rank=0):
    """The torch device for `auto|cuda|mps|cpu`; `auto` prefers CUDA, then Apple's MPS, then the CPU."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        choice = "cuda" if cuda else "mps" if mps else "cpu"
    if choice == "cuda":
        if not cuda:
            raise EngineError("DEVICE_UNAVAILABLE",
                              f"CUDA is not available to torch {torch.__version__} (built for CUDA "
                              f"{torch.version.cuda or 'none'}); install a CUDA build of torch or use device cpu",
                              field="device")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if choice == "mps":
        if not mps:
            raise EngineError("DEVICE_UNAVAILABLE", "Apple's MPS device is not available to this torch; use cpu",
                              field="device")
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(name, device):
    """The torch dtype of a request's dtype; float16 needs an accelerator (CPU kernels lack half precision)."""
    dtype = DTYPES[name]
    if dtype == torch.float16 and device.type == "cpu":
        raise EngineError("INVALID_ARGUMENT", "float16 needs a GPU; on the CPU use bfloat16 or float32", field="dtype")
    return dtype


def load_model(model_dir, task, device, dtype):
    """The base model by its Auto class, frozen, in eval mode: the base model's own dropout stays off, as in the
    onnx engine, so that only LoRA dropout differs between training and evaluation."""
    import transformers

    cls = transformers.AutoModelForSequenceClassification if task == "seq-cls" else transformers.AutoModelForCausalLM
    # transformers 4.56 renamed torch_dtype to dtype (the old name warns, and goes away in later releases).
    key = "dtype" if release(transformers.__version__) >= (4, 56) else "torch_dtype"
    try:
        model = cls.from_pretrained(model_dir, **{key: dtype})
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise EngineError("CONFIG_INVALID", f"transformers cannot load the model ({first_line(e)})", model_dir)
    model.to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def lora_config(raw, inference, source):
    """PEFT's LoraConfig from adapter_config.json fields; keys this PEFT does not know (the `lora_drop` record,
    fields of newer releases) are left out, since older PEFT releases refuse them."""
    from peft import LoraConfig

    known = {f.name for f in dataclasses.fields(LoraConfig) if f.init}
    kept = {k: v for k, v in raw.items() if k in known}
    kept["inference_mode"] = inference
    try:
        return LoraConfig(**kept)
    except (TypeError, ValueError) as e:
        raise EngineError("ADAPTER_INVALID", f"PEFT refuses the LoRA configuration ({first_line(e)})", source)


def attach_lora(model, config, adapter_dir, trainable, device):
    """The PEFT model: the saved adapter through PeftModel.from_pretrained, or a fresh LoRA through get_peft_model
    (PEFT's own initialisation, from torch's seeded generator)."""
    from peft import PeftModel, get_peft_model

    try:
        if adapter_dir:
            peft_model = PeftModel.from_pretrained(model, adapter_dir, config=config, is_trainable=trainable)
        else:
            peft_model = get_peft_model(model, config)
    except RuntimeError as e:
        raise EngineError("ADAPTER_SHAPE_MISMATCH", f"PEFT cannot load the adapter ({first_line(e)})", adapter_dir)
    except (OSError, ValueError, KeyError) as e:
        raise EngineError("ADAPTER_INVALID", f"PEFT cannot load the adapter ({first_line(e)})", adapter_dir)
    peft_model.to(device)
    peft_model.eval()
    return peft_model


def lora_modules(peft_model, expected, source):
    """PEFT's LoRA layers in the order of `expected` ({name, layer, module, param} from the Node side, which names
    modules as PEFT does); PEFT choosing other modules than the Node side expects is an error, not a guess."""
    from peft.tuners.lora import LoraLayer

    found = {}
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            found[name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name] = module
    want = [e["name"] for e in expected]
    missing = [n for n in want if n not in found]
    extra = sorted(set(found) - set(want))
    if missing or extra:
        what = (f"no LoRA on {', '.join(missing[:4])}" if missing else "") + ("; " if missing and extra else "") + \
               (f"an unexpected LoRA on {', '.join(extra[:4])}" if extra else "")
        raise EngineError("ADAPTER_INVALID", f"PEFT's LoRA layers differ from the adapter's: {what}", source,
                          "target_modules")
    return [(e, found[e["name"]]) for e in expected]


def bind_shared(pairs, check_equal, source):
    """Binds every group of modules with one `param` to ONE nn.Parameter pair (LoRA-drop's shared layers), before the
    optimiser is built, so autograd sums their gradients. Returns {param: (A, B)} in first-use order."""
    groups = {}
    for entry, module in pairs:
        groups.setdefault(entry["param"], []).append((entry, module))
    params = {}
    for name, members in groups.items():
        first = members[0][1]
        a, b = first.lora_A["default"].weight, first.lora_B["default"].weight
        for entry, module in members[1:]:
            if check_equal and not (torch.equal(module.lora_A["default"].weight, a)
                                    and torch.equal(module.lora_B["default"].weight, b)):
                raise EngineError("ADAPTER_INVALID", f"layer {entry['layer']} {entry['module']} shares {name} but "
                                  "starts from other values than the first layer sharing it", source, entry["name"])
            module.lora_A["default"].weight = a
            module.lora_B["default"].weight = b
        params[name] = (a, b)
    return params


def head_parameters(peft_model):
    """The classification head PEFT trains as modules_to_save, by base-model weight name (classifier.dense.weight)."""
    out = {}
    marker = "modules_to_save.default."
    for name, p in peft_model.named_parameters():
        if marker in name:
            base = name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name
            out[base.replace(marker, "")] = p
    return out


def loss_sum(model, batch, task):
    """The sum of the batch's cross-entropy terms, in float32: over its target tokens (causal LM, token t predicted
    from t-1), or over its examples' labels (sequence classification). Callers divide by the number of terms of the
    whole optimiser step, as the onnx engine does."""
    return loss_of_logits(model(**batch.model_inputs(task)).logits.float(), batch, task)


def loss_of_logits(logits, batch, task):
    """loss_sum's cross-entropy terms summed, from the model's float32 logits."""
    if task == "seq-cls":
        if batch.labels is None:
            raise EngineError("DATASET_INVALID", "an example has no label; a sequence classifier needs one", field="label")
        return F.cross_entropy(logits, batch.labels, reduction="sum")
    mask = batch.targets[:, 1:]
    picked = logits[:, :-1][mask]
    return F.cross_entropy(picked, batch.input_ids[:, 1:][mask], reduction="sum")


def first_line(e):
    """The first line of an exception's message, bounded, for a one-line error."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"
