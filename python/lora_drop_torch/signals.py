"""SIGINT / SIGTERM: stop at once by raising Cancelled in the main thread (between Python bytecodes, so a running
native operation finishes first). Only the first signal raises: the engine is then already unwinding, and the Node
side escalates to SIGKILL if it takes too long."""
import signal

from .errors import Cancelled

_raised = False
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum, _frame):
    global _raised
    if _raised:
        return
    _raised = True
    raise Cancelled(signal.Signals(signum).name)


def install():
    """Installs the handler for SIGINT and SIGTERM."""
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)


class held:
    """A block during which SIGINT/SIGTERM wait (a protocol line is written whole); they are delivered after it."""

    def __enter__(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return False
