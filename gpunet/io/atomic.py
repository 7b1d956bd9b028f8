"""Writing an output: atomically, its temporaries never read as results, and checked before training."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from ..errors import DataError


def _part_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    The temporary, ``.NAME.XXXXXXXX.part``, is hidden and never has the name of a result; a
    killed process leaves it behind, and :func:`remove_stale_parts` clears it on the next run.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


PART = re.compile(r"\..+\.[a-z0-9_]{8}\.part")  # .NAME. + mkstemp's 8 characters + .part


def refuse_temporary(path) -> None:
    """A temporary of :func:`atomic_write` is never read as a result."""
    if PART.fullmatch(Path(path).name):
        raise DataError(f"{path}: a temporary left by an interrupted write, not a result; read the file it was for")


def remove_stale_parts(path) -> None:
    """Remove the temporaries that a killed writer of ``path`` left (call only while holding its lock)."""
    path = Path(path)
    stale = re.compile(re.escape(_part_prefix(path)) + r"[a-z0-9_]{8}\.part")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if stale.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def check_writable(path, flag: str) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    path = Path(path)
    try:
        _check_writable(path, flag)
    except OSError as e:  # a folder on the way that cannot be searched, a name too long, ...
        raise DataError(f"{flag} {path}: cannot write there ({e.strerror or e})") from None


def _check_writable(path: Path, flag: str) -> None:
    if path.is_dir():
        raise DataError(f"{flag} {path}: a folder; give a file name (e.g. {path / 'run.npz'})")
    if path.exists() and not path.is_file():
        raise DataError(f"{flag} {path}: not a regular file (a pipe, device or socket); give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"{flag} {path}: folder {folder} does not exist")
    try:  # os.access misjudges read-only mounts and root: try what atomic_write will do
        fd, probe = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataError(f"{flag} {path}: folder {folder} is not writable ({e.strerror or e})") from None
