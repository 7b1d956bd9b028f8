"""The GPU check's files: its kept verdicts (JSON, written atomically under a lock that waits for another check),
the result its child process writes, and the report of a failure."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataError, GpunetError
from .fs import atomic_write, only_writer, open_regular, parse_json


def locked(path: Path, timeout: float):
    """Returns :func:`~gpunet.io.fs.only_writer` on ``path`` (its folder made), waiting up to ``timeout`` seconds
    for another process's check; raises DataError where the folder cannot be made."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(path.parent, f"cannot make the folder ({e.strerror or e})") from None
    return only_writer(path, "the kept verdict", "check", wait=timeout)


@functools.cache
def sources_sha256(paths: tuple[Path, ...]) -> str:
    """Returns the sha256 of the files ``paths``, names and contents, read once per process."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


MAX_BYTES = 1 << 20  # a kept verdict is about a kilobyte
FIELDS = {"passed": bool, "gpu": str, "date": str, "failure": str, "report": str}
FIELDS |= {"timings": dict, "identity": dict, "check_seconds": float}
SECONDS = ("cuda", "portable", "cpu")  # each timing's seconds per epoch


def read_json(path) -> Any:
    """Returns the JSON value in ``path``, or None where there is none, it is not a regular file of at most
    ``MAX_BYTES``, or not JSON."""
    try:
        with open_regular(path) as f:
            data = f.read(MAX_BYTES + 1)
        return parse_json(data.decode("utf-8"), str(path)) if len(data) <= MAX_BYTES else None
    except (OSError, UnicodeDecodeError, GpunetError):  # DataError too
        return None


def read_verdict(path) -> dict | None:
    """Returns the kept verdict in ``path``, a dict of ``FIELDS`` each of its type with every timing a positive
    number of seconds; None for anything else (a file damaged or planted: the GPU is checked again)."""
    found = read_json(path)
    if not (isinstance(found, dict) and found.keys() == FIELDS.keys()):
        return None
    if not all(_is(found[name], kind) for name, kind in FIELDS.items()):
        return None
    timings = found["timings"].values()
    if not all(isinstance(t, dict) and all(_is(t.get(k), float) and t[k] > 0 for k in SECONDS) for t in timings):
        return None
    return found


def _is(value, kind) -> bool:
    """Returns whether ``value`` is of ``kind``, as JSON has it: a float may be written as an int, a bool is no
    number."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind)


def write_json(path, value) -> None:
    """Writes ``value`` as JSON to ``path``, atomically; raises DataError where it cannot."""
    write_bytes(path, json.dumps(value, indent=1).encode())


def write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path``, atomically; raises DataError where it cannot."""
    with atomic_write(path) as f:
        f.write(data)


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """Yields a new temporary folder (a Path), removed with what it holds on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def write_report(path: Path, text: str) -> Path:
    """Returns where ``text`` was written: ``path``, or a new temporary file where ``path`` cannot be written."""
    try:
        write_bytes(path, text.encode())  # replaces what is there: a planted symlink is not followed
    except DataError:
        with tempfile.NamedTemporaryFile("wb", prefix="gpunet-cuda-check-", suffix=".txt", delete=False) as f:
            f.write(text.encode())
        path = Path(f.name)
    return path
