"""IDX files (MNIST's format): strict parsing, the header checked against the payload before allocating."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from array_api_compat import array_namespace

from ..errors import DataError
from .fs import check_memory, open_regular

# IDX type codes (http://yann.lecun.com/exdb/mnist/): all multi-byte values are big-endian.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_IDX_BYTES = 1 << 34  # a header promising more than 16 GiB is corrupt, not a dataset
_CHUNK = 1 << 24


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw), checking the header against the payload.

    The header's shape is checked, and the memory it asks for, before anything is allocated;
    the payload is then decoded straight into the one array returned (no copies).
    """
    with _idx_stream(path) as (f, header):
        return _payload(f, header, 0, header.shape[0])


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX header says: the file, its item type and shape, and the stream's length when known."""

    path: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    size: int | None  # the raw file's length; None for gzip (known only once decoded)

    @property
    def item_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize


@contextlib.contextmanager
def _idx_stream(path):
    """(the open stream just after its header, the checked :class:`IdxHeader`); read errors as one line."""
    path = Path(path)
    try:
        with open_regular(path, "data file") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            if path.suffix == ".gz" and not gzipped:
                raise DataError(path, "not gzip data, though the name ends in .gz")
            if not gzipped:
                yield raw, _header(raw, path, size=os.fstat(raw.fileno()).st_size)
                return
            with gzip.GzipFile(fileobj=raw) as f:
                yield f, _header(f, path, size=None)
    except MemoryError:
        raise DataError(path, "not enough memory to read it") from None
    except (OSError, EOFError, zlib.error) as e:  # cut or corrupt gzip stream, unreadable file
        raise DataError(path, f"cannot read ({e})") from None


def read_header(path) -> IdxHeader:
    """The checked header of an IDX file alone: a few bytes read, nothing of the payload."""
    with _idx_stream(path) as (_, header):
        return header


def _header(f, path: Path, size: int | None) -> IdxHeader:
    """The header of an IDX stream, checked on its own and, for a raw file, against the file's length."""
    head = f.read(4)
    if len(head) < 4:
        raise DataError(path, f"empty or truncated IDX header ({len(head)} bytes)")
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES or head[3] == 0:
        raise DataError(path, f"not an IDX file (magic bytes {head.hex()})")
    dtype, ndim = IDX_DTYPES[head[2]], head[3]
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(path, f"truncated IDX header (expected {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    # Each item (an image) must be a sane size on its own: a zero count must not hide huge dimensions.
    if 0 in shape[1:]:
        raise DataError(path, f"the header's shape {shape} has a zero dimension; the file is corrupt")
    nbytes = math.prod(shape) * dtype.itemsize
    if math.prod(shape[1:]) * dtype.itemsize > MAX_IDX_BYTES or nbytes > MAX_IDX_BYTES:
        raise DataError(path, f"header claims an absurd size {shape} ({nbytes} bytes); the file is corrupt")
    if size is not None and size != 4 + 4 * ndim + nbytes:  # a raw file: its length is known up front
        found = size - 4 - 4 * ndim
        if found < nbytes:
            raise DataError(path, f"truncated: header promises {nbytes} bytes of data for shape {shape}, found {found}")
        raise DataError(path, f"trailing bytes after the {nbytes} bytes of data the header describes")
    return IdxHeader(path, dtype, shape, size)


def _parse_idx(f, path: Path, size: int | None = None) -> np.ndarray:
    """The array an IDX stream holds; ``size`` is the stream's length when known (a raw file)."""
    header = _header(f, path, size)
    return _payload(f, header, 0, header.shape[0])


def _payload(f, header: IdxHeader, start: int, count: int) -> np.ndarray:
    """Items ``start`` to ``start + count`` of the stream (read up to ``start``), decoded straight into the one
    array returned; after the last item the stream must end (a short or a long payload is refused)."""
    path, dtype, shape = header.path, header.dtype, header.shape
    total = math.prod(shape) * dtype.itemsize
    nbytes = count * header.item_bytes
    check_memory(nbytes, f"{path}: its header's shape {shape}")
    array = np.empty((count, *shape[1:]), dtype)
    view = array.reshape(-1).view(np.uint8).data  # the array's own bytes
    got = 0
    while got < nbytes:  # decode into the array itself, in bounded steps
        n = f.readinto(view[got : got + _CHUNK])
        if not n:
            found = start * header.item_bytes + got
            raise DataError(path, f"truncated: header promises {total} bytes of data for shape {shape}, found {found}")
        got += n
    if start + count == shape[0] and f.read(1):
        raise DataError(path, f"trailing bytes after the {total} bytes of data the header describes")
    native = dtype.newbyteorder("=")
    if dtype != native:  # IDX is big-endian: swap in place
        array.byteswap(inplace=True)
        array = array.view(native)
    return array


def iter_idx(path, items: int = 4096) -> Iterator[tuple[IdxHeader, int, np.ndarray]]:
    """(header, index of the first item, the next ``items`` items) of an IDX file, decoded a chunk at a time:
    memory bounded by the chunk, whatever count the header claims."""
    with _idx_stream(path) as (f, header):
        count = header.shape[0]
        for start in range(0, max(count, 1), items):  # an empty file is one empty chunk, its end checked
            yield header, start, _payload(f, header, start, min(items, count - start))


def unit(pixels, dtype=np.float64):
    """``pixels`` (any array API array) as ``dtype`` in [0, 1]: uint8 ones (IDX files, pictures) divided by 255,
    floats (the book's pickle) as they are."""
    xp = array_namespace(pixels)
    x = xp.astype(pixels, dtype)
    return x / 255 if pixels.dtype == xp.uint8 else x


def check_pair(images: IdxHeader, labels: IdxHeader) -> None:
    """An images file and its labels file agree, by their headers alone: nothing is decoded before this."""
    if len(images.shape) != 3 or images.dtype != np.uint8:
        raise DataError(
            images.path, f"expected uint8 images of shape (n, rows, cols), got {images.dtype} {images.shape}"
        )
    if len(labels.shape) != 1 or labels.dtype.kind not in "iu":
        raise DataError(labels.path, f"expected a 1-d array of integer labels, got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(labels.path, f"{labels.shape[0]} labels for {images.shape[0]} images in {images.path}")


def read_images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both files, their headers checked against each other before either payload is decoded."""
    check_pair(read_header(images_path), read_header(labels_path))
    images, labels = read_idx(images_path), read_idx(labels_path)
    if len(labels) and labels.min() < 0:
        raise DataError(labels_path, f"negative label {labels.min()}")
    return images, labels
