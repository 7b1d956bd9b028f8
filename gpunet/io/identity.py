"""Which data a run was trained on: one definition, used by ``train --resume``, sweeps and their Dask workers,
the manifest and ``gpunet data verify``.

A data file is identified by the SHA-256 of its decoded content: the IDX bytes (dimensions, then the images
or labels) whether the file is gzip-compressed (by any compressor, at any level) or raw; for the book's
pickle, the pickle inside the gzip. So MNIST recompressed, or downloaded from a mirror that compressed it
otherwise, is the same data; MNIST's own files have the published checksums that ``data verify`` checks.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

from ..errors import DataError
from .fs import open_regular

GZIP_MAGIC = b"\x1f\x8b"


def content_sha256(path, gzipped: bool | None = None, limit: int = 0) -> str:
    """SHA-256 of a data file's decoded content: decompressed when it is gzip data (by default as the IDX
    reader decides: by its first two bytes), else the file's bytes; "" as soon as the content passes ``limit``
    bytes (when given: a gzip bomb is not unpacked to the end)."""
    path = Path(path)
    try:
        with open_regular(path, "data file") as raw:
            if gzipped is None:
                gzipped = raw.read(2) == GZIP_MAGIC
                raw.seek(0)
            return digest(gzip.GzipFile(fileobj=raw) if gzipped else raw, limit=limit)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot read ({e})") from None


def digest(f, algorithm: str = "sha256", limit: int = 0) -> str:
    """The hex digest of what stream ``f`` holds; "" as soon as it passes ``limit`` bytes (when given)."""
    h, read = hashlib.new(algorithm), 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        read += len(chunk)
        if limit and read > limit:
            return ""  # longer than the content it should be: not it, whatever the rest holds
        h.update(chunk)
    return h.hexdigest()


def checksums(host) -> dict:
    """``{path: content SHA-256}`` of the files ``host`` was read from, as the manifest records them."""
    return {str(p): content_sha256(p) for p in host.files}


def same_data(a: dict, b: dict) -> bool:
    """Two ``{path: SHA-256}`` name the same data: files compare by name (``.gz`` or raw alike) and checksum,
    so the same data read from another folder, machine or compression is the same."""
    return _by_name(a) == _by_name(b)


def _by_name(checksums: dict) -> dict:
    return {Path(p).name.removesuffix(".gz"): h for p, h in checksums.items()}


def matches(recorded, current: dict) -> bool:
    """Returns whether ``current`` (:func:`checksums` of the data read now) is the data of a record:
    ``{path: SHA-256}`` (a sweep's manifest) or the sorted list of SHA-256 (a checkpoint's settings)."""
    if isinstance(recorded, dict):
        return same_data(recorded, current)
    return sorted(recorded) == sorted(current.values())
