"""The file system as gpunet uses it: only regular files read, no more memory or disk taken than is free, every
output written whole or not at all (:func:`atomic_write`) by one writer at a time (:func:`only_writer`), and the
temporaries of a killed writer (``.NAME.XXXXXXXX.part``) never read as results and cleared by the next one."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from ..errors import DataError, GpunetError, say
from .signals import uninterrupted


def open_regular(path, what: str = "file"):
    """``path`` open for binary reading; anything but a regular file is refused (DataError) before a byte is read.

    A FIFO, a device or a socket would block or never end; it is opened without blocking and refused at once.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except IsADirectoryError:
        raise DataError(path, f"a folder, not a {what}") from None
    except OSError as e:
        raise DataError(path, f"cannot open ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DataError(path, f"a folder, not a {what}")
        if not stat.S_ISREG(mode):
            raise DataError(path, f"not a regular file (a pipe, device or socket); give a {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def cpu_model() -> str | None:
    """The CPU's model name as /proc/cpuinfo gives it; None where it does not."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def available_memory() -> int | None:
    """Bytes of memory this process can still take: MemAvailable, capped by a cgroup limit; None if unknown."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            used = Path(name).with_name("memory.current" if name.endswith(".max") else "memory.usage_in_bytes")
            try:
                limits.append(int(text) - int(used.read_text().strip()))
            except (OSError, ValueError):
                limits.append(int(text))
    address_space = _address_space_left()
    if address_space is not None:
        limits.append(address_space)
    return min(limits) if limits else None


def _address_space_left() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) still allows this process to map; None without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return soft - mapped
    except (ImportError, OSError, ValueError, IndexError):
        return None


def check_memory(nbytes: int, what: str, hint: str = "", error=DataError) -> None:
    """None when ``nbytes`` for ``what`` are free in memory; else ``error``, one line saying how much is."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise error(f"{what} needs {human_bytes(nbytes)}, but only {human_bytes(max(free, 0))} is free{hint}")


def check_disk(nbytes: int, path: Path, what: str, hint: str = "", error=DataError) -> None:
    """None when ``nbytes`` for ``what`` are free on the disk ``path`` is (or will be) on; else ``error``."""
    folder = next((p for p in (path, *path.absolute().parents) if p.is_dir()), None)
    free = shutil.disk_usage(folder).free if folder is not None else math.inf
    if nbytes > free:
        raise error(f"{what} need {human_bytes(nbytes)} on disk, only {human_bytes(int(free))} is free there{hint}")


def human_bytes(nbytes: int) -> str:
    """1.5 GiB, 12.0 MiB, 3.0 KiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{nbytes / 1024:.1f} KiB"


MAX_JSON_LINE = 1 << 24  # characters: far more than any line gpunet writes (a sweep's manifest is the longest)


def parse_json(text: str, where: str, error=GpunetError):
    """The JSON value of one line gpunet wrote; a line too long, nested too deep for ``json`` (a RecursionError)
    or not JSON is refused (``error``) in one line naming ``where`` (the file and line)."""
    if len(text) > MAX_JSON_LINE:
        raise error(f"{where}: a line of {len(text):,} characters, more than the {MAX_JSON_LINE:,} gpunet writes")
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where}: JSON nested too deep; gpunet writes no such line") from None
    except ValueError as e:
        raise error(f"{where}: not JSON ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


# The one temporary-name rule: ``.NAME.`` + mkstemp's 8 characters + ``.part``, hidden beside the file it is for.
PART = re.compile(r"\..+\.[a-z0-9_]{8}\.part")


def temporary(path: Path) -> tuple[int, str]:
    """(descriptor, name) of a new temporary for ``path``, beside it, made with O_EXCL (no planted link followed)."""
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)


def refuse_temporary(path) -> None:
    """None for a result; DataError for a temporary of :func:`atomic_write`, which is never read as one."""
    if PART.fullmatch(Path(path).name):
        raise DataError(path, "a temporary left by an interrupted write, not a result; read the file it was for")


def remove_stale_parts(path, older_than: float = 0) -> None:
    """None, once the temporaries a killed writer of ``path`` left are removed: all of them by a writer holding
    ``path``'s lock (:func:`only_writer`); without it, only those not written for ``older_than`` seconds."""
    path = Path(path)
    stale = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.part")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if stale.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if older_than <= 0 or os.path.getmtime(entry.path) < time.time() - older_than:
                        os.unlink(entry.path)


def remove_empty(*folders) -> None:
    """None, once each of ``folders`` that is empty is removed (what a command made and left nothing in)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            Path(folder).rmdir()


@contextlib.contextmanager
def atomic_write(path):
    """A binary file to write ``path``'s new content into: a temporary beside it, renamed into place when the block
    ends without an error, and removed when it does not; a stop signal waits until the rename is done.

    The rename replaces whatever is at ``path`` (a planted symlink too) and writes through none; an OSError is
    DataError, one line naming ``path``. A killed process leaves the temporary; :func:`remove_stale_parts` clears it.
    """
    path = Path(path)
    tmp = None
    try:
        with uninterrupted():
            fd, tmp = temporary(path)
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), 0o666 & ~_umask())  # as open() would have made it, not mkstemp's 0600
            os.replace(tmp, path)
    except OSError as e:
        raise DataError(path, f"cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path, flag: str) -> None:
    """None when ``path`` can be written (tried, as :func:`atomic_write` will); else DataError, before training."""
    path = Path(path)
    try:
        if path.is_dir():
            raise DataError(f"{flag} {path}: a folder; give a file name (e.g. {path / 'run.npz'})")
        if path.exists() and not path.is_file():
            raise DataError(f"{flag} {path}: not a regular file (a pipe, device or socket); give a file name")
        if not path.parent.is_dir():
            raise DataError(f"{flag} {path}: folder {path.parent} does not exist")
    except OSError as e:  # a folder on the way that cannot be searched, a name too long, ...
        raise DataError(f"{flag} {path}: cannot write there ({e.strerror or e})") from None
    try:  # os.access misjudges read-only mounts and root
        fd, probe = temporary(path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataError(f"{flag} {path}: folder {path.parent} is not writable ({e.strerror or e})") from None


@contextlib.contextmanager
def only_writer(path, flag: str, what: str, wait: float = 0):
    """Nothing: ``.<name>.lock`` next to ``path`` is held while inside; a second writer waits up to ``wait``
    seconds, said, then is refused (DataError).

    The lock file is unlinked while still held, so no debris is left: a waiter that flocks the old inode
    sees st_nlink 0 and starts over (filelock >= 4), so two never both hold it."""
    from filelock import FileLock, Timeout

    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    lock = FileLock(lock_path, timeout=wait)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise
            say(f"waiting up to {wait:.0f} s for another gpunet {what} of {path} (lock {lock_path}) ...")
            lock.acquire()
    except Timeout:
        busy = f"another gpunet {what} is writing it now (lock {lock_path}); wait for it to end, or give another name"
        raise DataError(f"{flag} {path}: {busy}") from None
    except OSError as e:
        raise DataError(f"{flag} {path}: cannot take the lock {lock_path} ({e.strerror or e})") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        lock.release()
