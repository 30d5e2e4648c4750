"""The PyTorch engine of LoRA-drop: profile and train LoRA adapters with transformers + PEFT.

Run as a child process by the Node side (extension/core/torch/): `python -m lora_drop_torch REQUEST.json`. It
reads one request, answers with JSON lines on stdout (progress, log, step, result, error) and nothing else there.
"""

#: Version of the request / answer protocol; the Node side sends it and the engine refuses any other.
PROTOCOL_VERSION = 1
