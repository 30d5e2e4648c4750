"""Reading the request file the Node side writes (extension/core/torch/protocol.ts describes every field)."""
import json

from . import PROTOCOL_VERSION
from .errors import EngineError

COMMANDS = ("profile", "train", "evaluate", "evaluate-sets")


class Request:
    """A request, with typed accessors that name the request file and field when a value is missing or wrong."""

    def __init__(self, path, raw):
        self.path = path
        self.raw = raw

    def get(self, key, kind, default=None, required=True):
        """The value of `key`, checked to be of `kind` (a type or tuple of types)."""
        if key not in self.raw or self.raw[key] is None:
            if required and default is None:
                raise EngineError("INVALID_ARGUMENT", f"the request has no {key}", self.path, key)
            return default
        value = self.raw[key]
        # bool is an int in Python; a flag given where a number is expected is still a mistake.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise EngineError("INVALID_ARGUMENT", f"{key} has the wrong type ({type(value).__name__})", self.path, key)
        return value

    def choice(self, key, options, default=None):
        """A string among `options`."""
        value = self.get(key, str, default)
        if value not in options:
            raise EngineError("INVALID_ARGUMENT", f"{key} must be one of {', '.join(options)}, not {value!r}",
                              self.path, key)
        return value

    def number(self, key, default=None):
        """An int or float."""
        return self.get(key, (int, float), default)


def read(path):
    """Reads and checks the envelope of a request: the protocol version and the command."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise EngineError("FILE_NOT_FOUND", "the request file does not exist", path)
    except (OSError, ValueError) as e:
        raise EngineError("INVALID_ARGUMENT", f"the request file cannot be read as JSON ({e})", path)
    if not isinstance(raw, dict):
        raise EngineError("INVALID_ARGUMENT", "the request is not a JSON object", path)
    req = Request(path, raw)
    if raw.get("version") != PROTOCOL_VERSION:
        raise EngineError("INVALID_ARGUMENT", f"protocol version {raw.get('version')!r} is not {PROTOCOL_VERSION}; "
                          "the Python package and the extension come from different releases", path, "version")
    req.choice("command", COMMANDS)
    return req
