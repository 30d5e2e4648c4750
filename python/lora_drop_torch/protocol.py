"""The JSON-lines channel to the Node side.

stdout belongs to the protocol alone: at start the real stdout is duplicated for the channel and file descriptor 1
is pointed at stderr, so prints, library warnings and native code that writes to stdout all land on stderr. Every
answer is one JSON object on one line, flushed at once. In a data-parallel run the first process of each node (local
rank 0) answers, since each node's Node side goes on with the result (only node 0 writes files); errors are
reported by every rank (with its rank) so a failure on any process reaches the user.
"""
import json
import os
import sys

from . import signals

_out = None
_rank = 0
_answers = True


def open_channel():
    """Takes stdout for the protocol and sends everything else written to it to stderr."""
    global _out
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def set_rank(rank, answers):
    """Sets this process's data-parallel rank, and whether it answers (local rank 0) or sends errors only."""
    global _rank, _answers
    _rank, _answers = rank, answers


def send(obj, every_rank=False):
    """Writes one answer line; NaN/Inf are refused (they are not JSON) and must be turned into errors first."""
    if not _answers and not every_rank:
        return
    line = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    out = _out or sys.__stdout__
    # A signal raising Cancelled inside a large write would leave half a line for the reader.
    with signals.held():
        out.write(line + "\n")
        out.flush()


def progress(step, total, message=None):
    """A progress line: `step` of `total` units done."""
    obj = {"type": "progress", "step": step, "total": total}
    if message is not None:
        obj["message"] = message
    send(obj)


def log(message, level="info"):
    """A log line for the user (level info or warn)."""
    send({"type": "log", "level": level, "message": message})


def error(code, message, file=None, field=None):
    """An error line; sent by every rank."""
    obj = {"type": "error", "code": code, "message": message}
    if file is not None:
        obj["file"] = str(file)
    if field is not None:
        obj["field"] = str(field)
    if _rank != 0:
        obj["rank"] = _rank
    send(obj, every_rank=True)
