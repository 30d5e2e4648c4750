"""Typed errors of the engine, with the same codes as the Node side's extension/core/errors.ts."""


class EngineError(Exception):
    """An error the user can act on: a code, a message saying what to do, and where known the file and field."""

    def __init__(self, code, message, file=None, field=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.file = file
        self.field = field


class Cancelled(BaseException):
    """Raised by the SIGINT/SIGTERM handler. A BaseException, as KeyboardInterrupt is, so that library code catching
    Exception cannot swallow it."""


def oom_error(e, where=""):
    """The typed error for a device out-of-memory exception, or None when `e` is something else."""
    text = str(e)
    if type(e).__name__ != "OutOfMemoryError" and "out of memory" not in text.lower():
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return EngineError(
        "MEMORY_BUDGET",
        f"the device ran out of memory{' ' + where if where else ''} ({first[:200]}); lower the batch size (keep the global batch with "
        "more gradient accumulation), the maximum length, or use dtype bfloat16, or more GPUs",
        field="batchSize")
