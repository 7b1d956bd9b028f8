"""IDX files (MNIST's format): strict parsing, the header checked against the payload before allocating."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import FileError, check_memory, open_regular

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
    path = Path(path)
    try:
        with open_regular(path, "data file") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            if path.suffix == ".gz" and not gzipped:
                raise DataError(f"{path}: not gzip data, though the name ends in .gz")
            if not gzipped:
                return _parse_idx(raw, path, size=os.fstat(raw.fileno()).st_size)
            with gzip.GzipFile(fileobj=raw) as f:
                return _parse_idx(f, path, size=None)
    except FileError as e:
        raise DataError(str(e)) from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to read it") from None
    except (OSError, EOFError, zlib.error) as e:  # cut or corrupt gzip stream, unreadable file
        raise DataError(f"{path}: cannot read ({e})") from None


def _parse_idx(f, path: Path, size: int | None = None) -> np.ndarray:
    """The array an IDX stream holds; ``size`` is the stream's length when known (a raw file)."""
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: empty or truncated IDX header ({len(head)} bytes)")
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES or head[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic bytes {head.hex()})")
    dtype, ndim = IDX_DTYPES[head[2]], head[3]
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header (expected {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    # Each item (an image) must be a sane size on its own: a zero count must not hide huge dimensions.
    if 0 in shape[1:]:
        raise DataError(f"{path}: the header's shape {shape} has a zero dimension; the file is corrupt")
    nbytes = math.prod(shape) * dtype.itemsize
    if math.prod(shape[1:]) * dtype.itemsize > MAX_IDX_BYTES or nbytes > MAX_IDX_BYTES:
        raise DataError(f"{path}: header claims an absurd size {shape} ({nbytes} bytes); the file is corrupt")
    if size is not None and size != 4 + 4 * ndim + nbytes:  # a raw file: its length is known up front
        found = size - 4 - 4 * ndim
        if found < nbytes:
            raise DataError(
                f"{path}: truncated: header promises {nbytes} bytes of data for shape {shape}, found {found}"
            )
        raise DataError(f"{path}: trailing bytes after the {nbytes} bytes of data the header describes")
    check_memory(nbytes, f"{path}: its header's shape {shape}")
    array = np.empty(shape, dtype)
    view = array.reshape(-1).view(np.uint8).data  # the array's own bytes
    got = 0
    while got < nbytes:  # decode into the array itself, in bounded steps
        n = f.readinto(view[got : got + _CHUNK])
        if not n:
            raise DataError(f"{path}: truncated: header promises {nbytes} bytes of data for shape {shape}, found {got}")
        got += n
    if f.read(1):
        raise DataError(f"{path}: trailing bytes after the {nbytes} bytes of data the header describes")
    native = dtype.newbyteorder("=")
    if dtype != native:  # IDX is big-endian: swap in place
        array.byteswap(inplace=True)
        array = array.view(native)
    return array


def read_images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (n, rows, cols), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: expected a 1-d array of integer labels, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{labels_path}: negative label {labels.min()}")
    return images, labels
