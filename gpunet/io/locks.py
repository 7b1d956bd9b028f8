"""One writer per output: a lock next to it, held for the run and removed when the run ends, whatever ends it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import DataError


@contextlib.contextmanager
def only_writer(path, flag: str, what: str):
    """Hold ``.<name>.lock`` next to ``path`` while inside; a second writer is refused in one line.

    The lock file is unlinked while still held, so no debris is left: a waiter that flocks the old inode
    sees st_nlink 0 and starts over (filelock >= 4), so two never both hold it."""
    from filelock import FileLock, Timeout

    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DataError(
            f"{flag} {path}: another gpunet {what} is writing it now (lock {lock_path}); "
            "wait for it to end, or give another name"
        ) from None
    except OSError as e:
        raise DataError(f"{flag} {path}: cannot take the lock {lock_path} ({e.strerror or e})") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        lock.release()
