"""The GPU check's files: its kept verdicts (JSON, written atomically under a lock that waits for another check),
the result its child process writes, and the report of a failure."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataError, GpunetError
from .fs import atomic_write, only_writer, parse_json


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


def read_json(path) -> Any:
    """Returns the JSON value in ``path``, or None where there is none or it cannot be read."""
    try:
        return parse_json(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, ValueError, GpunetError):
        return None


def write_json(path, value) -> None:
    """Writes ``value`` as JSON to ``path``, atomically; raises DataError where it cannot."""
    text = json.dumps(value, indent=1).encode()
    with atomic_write(path) as f:
        f.write(text)


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """Yields a new temporary folder (a Path), removed with what it holds on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def write_report(path: Path, text: str) -> Path:
    """Returns where ``text`` was written: ``path``, or a new temporary file where ``path`` cannot be written."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        with tempfile.NamedTemporaryFile("wb", prefix="gpunet-cuda-check-", suffix=".txt", delete=False) as f:
            f.write(text.encode())
        path = Path(f.name)
    return path
