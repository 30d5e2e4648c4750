"""SIGINT / SIGTERM: stop at once by raising Cancelled in the main thread (between Python bytecodes, so a running
native operation finishes first). Only the first signal raises: the engine is then already unwinding, and the Node
side escalates to SIGKILL if it takes too long.

The Node side may itself be killed outright (SIGKILL, an out-of-memory kill, a worker the extension host gave up
on); it cannot stop the engine then, and the engine's processes lead their own process group. So every engine
process (a launcher's workers too: they inherit the variable) watches the Node process named by
$LORA_DROP_PARENT_PID and stops itself as on SIGTERM once it is gone."""
import os
import signal
import threading
import time

from .errors import Cancelled

_raised = False
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum, _frame):
    global _raised
    if _raised:
        return
    _raised = True
    raise Cancelled(signal.Signals(signum).name)


PARENT_VARIABLE = "LORA_DROP_PARENT_PID"
#: Seconds between two looks at the Node process.
WATCH_INTERVAL = 1.0


def install():
    """Installs the handler for SIGINT and SIGTERM, and the watch on the Node process when one is named."""
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)
    try:
        parent = int(os.environ.get(PARENT_VARIABLE, "0"))
    except ValueError:
        parent = 0
    if parent > 1:
        threading.Thread(target=_watch, args=(parent,), name="lora-drop-parent-watch", daemon=True).start()


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _watch(parent):
    while _alive(parent):
        time.sleep(WATCH_INTERVAL)
    os.kill(os.getpid(), signal.SIGTERM)


class held:
    """A block during which SIGINT/SIGTERM wait (a protocol line is written whole); they are delivered after it."""

    def __enter__(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return False
