"""The JSON-lines log of a run: its manifest first, then one object per epoch; read back strictly."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DataError
from ..settings import EPOCHS, NON_NEGATIVE_REAL, check
from .fs import atomic_write, check_memory, open_regular, parse_json, refuse_temporary

MAX_LOG_BYTES = 1 << 28


class JsonLog:
    """A JSON-lines file, the run's manifest first, then one object per epoch; rewritten whole each time.

    ``kept`` are the lines of the same run's log to continue (a resumed run appends to them).
    """

    def __init__(self, path, manifest: dict, kept=(), resumed_at: int | None = None):
        self.path = Path(path)
        head = {"type": "resumed", "at_epoch": resumed_at} if kept else {"type": "manifest"}
        self.lines = [*kept, json.dumps({**head, **manifest})]
        self._write()

    def append(self, record: dict) -> None:
        self.lines.append(json.dumps({"type": "epoch", **record}))
        self._write()

    def _write(self) -> None:
        with atomic_write(self.path) as f:
            f.write(("\n".join(self.lines) + "\n").encode())


def _read_text(path, what: str) -> str:
    refuse_temporary(path)
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_LOG_BYTES:
            raise DataError(path, f"{size} bytes, far more than a gpunet log; not a JSON-lines log")
        check_memory(2 * size, f"{path}")
        try:
            return f.read().decode()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(path, f"not a gpunet JSON-lines log ({e})") from None


def read_log(path) -> tuple[dict, list[dict]]:
    """(manifest, epoch records) of a log written by :class:`JsonLog`, each epoch record checked."""
    head, epochs = {}, []
    for number, line in enumerate(_read_text(path, "JSON-lines log").splitlines(), 1):
        if not line.strip():
            continue
        o = parse_json(line, f"{path}, line {number}", DataError)
        if not isinstance(o, dict):
            raise DataError(f"{path}, line {number}: not a JSON object; not a gpunet log")
        if number == 1 and o.get("type") == "manifest":
            head = o
        if o.get("type") != "epoch":
            continue
        check(f"{path}, line {number}: 'epoch'", o.get("epoch"), EPOCHS, error=DataError)
        for key in ("accuracy", "training_cost"):
            if key in o:
                check(f"{path}, line {number}: {key!r}", o[key], NON_NEGATIVE_REAL, error=DataError)
        epochs.append(o)
    if not head and not epochs:
        raise DataError(path, "not a gpunet JSON-lines log (no manifest, no epochs)")
    return head, epochs


def _log_lines_of(path, before_epoch: int) -> list[str]:
    """The lines of this run's log ``path`` to keep when the run resumes at ``before_epoch``."""
    read_log(path)  # every line checked before any is kept
    kept = []
    for line in _read_text(path, "JSON-lines log").splitlines():
        if line.strip():
            o = parse_json(line, f"{path}", DataError)
            if o.get("type") != "epoch" or o["epoch"] < before_epoch:  # the epochs after the checkpoint are redone
                kept.append(line)
    return kept


def _log_run(path) -> str | None:
    with open_regular(path, "JSON-lines log") as f:
        first = f.readline(1 << 20)
    try:
        head = parse_json(first.decode(), f"{path}, line 1", DataError)
    except UnicodeDecodeError:
        raise DataError(path, "not a gpunet JSON-lines log") from None
    if not (isinstance(head, dict) and head.get("type") == "manifest"):
        raise DataError(path, "not a gpunet JSON-lines log")
    return head.get("run") if isinstance(head.get("run"), str) else None
