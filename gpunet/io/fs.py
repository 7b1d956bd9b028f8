"""Reading what a user names: only regular files, and no more memory than the machine has free."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np

from ..errors import GpunetError


class FileError(GpunetError):
    """A file the user named cannot be used as it is."""


def open_regular(path, what: str = "file"):
    """Open ``path`` for binary reading, refusing at once anything that is not a regular file.

    A FIFO, a device or a socket would block or never end; it is opened without blocking
    and refused before a byte is read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise FileError(f"{path}: a folder, not a {what}") from None
    except OSError as e:
        raise FileError(f"{path}: cannot open ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileError(f"{path}: a folder, not a {what}")
        if not stat.S_ISREG(mode):
            raise FileError(f"{path}: not a regular file (a pipe, device or socket); give a {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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


def check_memory(nbytes: int, what: str) -> None:
    """Refuse, in one line, to allocate ``nbytes`` for ``what`` when the machine does not have them free."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise FileError(f"{what} needs {human_bytes(nbytes)}, but only {human_bytes(max(free, 0))} is free")


def human_bytes(nbytes: int) -> str:
    """1.5 GiB, 12.0 MiB, 3.0 KiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{nbytes / 1024:.1f} KiB"


MAX_JSON_DEPTH = 100  # gpunet writes objects a few levels deep; Python's json recurses once per level
MAX_JSON_LINE = 1 << 24  # characters: far more than any line gpunet writes (a sweep's manifest is the longest)
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def parse_json(text: str, where: str, error=GpunetError):
    """One JSON value of a file gpunet wrote, bounded: a line too long or nested too deep (which would be a
    RecursionError in ``json``) is refused in one line naming ``where`` (the file and line), as is bad JSON."""
    if len(text) > MAX_JSON_LINE:
        raise error(f"{where}: a line of {len(text):,} characters, more than the {MAX_JSON_LINE:,} gpunet writes")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise error(f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep; gpunet writes no such line")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise error(f"{where}: not JSON ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def json_depth(text: str) -> int:
    """How deep the arrays and objects of ``text`` nest at most (brackets inside strings do not count);
    the count of opening brackets, when that is already within MAX_JSON_DEPTH."""
    opening = text.count("[") + text.count("{")
    if opening <= MAX_JSON_DEPTH:
        return opening
    codes = np.frombuffer(_JSON_STRINGS.sub("", text).encode("utf-8", "surrogatepass"), np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))
