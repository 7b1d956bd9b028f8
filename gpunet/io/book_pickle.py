"""The book's ``mnist.pkl.gz`` (its own train/validation/test split), unpickled safely."""

from __future__ import annotations

import codecs
import functools
import gzip
import math
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data.host import HostData, _classes
from ..errors import DataError
from .fs import check_memory, open_regular

BIG = 1 << 20  # byte strings from this size up are read straight into the array they become
MAX_OPCODES = 100_000  # the book's file has about a hundred: a pickle of millions of small objects is not it
_STEP = 1 << 24  # bytes read at a time
_LENGTHS = {  # the string opcodes, and the format of each one's length
    pickle.BINSTRING: "<i",
    pickle.BINBYTES: "<I",
    pickle.BINBYTES8: "<Q",
    pickle.BINUNICODE: "<I",
    pickle.BINUNICODE8: "<Q",
}


class _Raw:
    """A large byte string of the pickle, read into the uint8 array that the NumPy array it holds becomes."""

    __slots__ = ("buffer",)

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer


class _Array:
    """What NumPy's ``_reconstruct`` makes here: a stand-in that BUILD gives the array's state."""

    def __init__(self, cls, shape, typecode):
        self.state = None

    def __setstate__(self, state) -> None:
        self.state = state


class _Opcodes(dict):
    """The unpickler's opcode table, counting the opcodes looked up in it: a pickle of more than MAX_OPCODES
    is refused before it fills the memory."""

    def __init__(self, table, path):
        super().__init__(table)
        self.path, self.count = path, 0

    def __getitem__(self, code):
        self.count += 1
        if self.count > MAX_OPCODES:
            raise DataError(self.path, f"more than {MAX_OPCODES:,} objects; not the book's pickle")
        return super().__getitem__(code)


class _BookUnpickler(pickle._Unpickler):
    """Admits NumPy arrays and plain tuples (``find_class``), nothing else: a pickle can otherwise run any code.

    The pure-Python unpickler, its five string opcodes replaced, so that each array's bytes are decoded once,
    into the array itself: the C unpickler makes a bytes object (and, from Python 2, a str) and NumPy then
    copies it, 2-3x the data, more than the memory the hostile tests allow.
    """

    read: Callable[[int], bytes]  # set by load(), as in pickle's own
    append: Callable[[object], None]

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # the book's file is a Python 2 pickle
        self.path = path
        strings = {op[0]: functools.partial(_BookUnpickler.load_string, op=op) for op in _LENGTHS}
        self.dispatch = _Opcodes({**self.dispatch, **strings}, path)  # type: ignore[misc]  # this one's own
        self.allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _Array,  # NumPy 1 wrote this name
            ("numpy._core.multiarray", "_reconstruct"): _Array,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): self.encode,  # bytes in protocol-2 pickles written by Python 3
        }

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise DataError(self.path, f"refused: the pickle asks for {module}.{name}; only NumPy arrays are allowed")
        return self.allowed[(module, name)]

    def encode(self, text, encoding="utf-8"):
        """``_codecs.encode``: a large string is already bytes."""
        if not isinstance(text, _Raw):
            return codecs.encode(text, encoding)
        if encoding != "latin1":
            raise DataError(self.path, f"refused: bytes encoded as {encoding!r}, not latin1")
        return text

    def read_exactly(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise DataError(self.path, f"truncated: the pickle ends inside a string of {n} bytes")
        return data

    def load_string(self, op: bytes) -> None:
        """BINSTRING (Python 2's str, read as latin1), BINBYTES(8), BINUNICODE(8): a large one into an array."""
        fmt = _LENGTHS[op]
        (n,) = struct.unpack(fmt, self.read_exactly(struct.calcsize(fmt)))
        if n < 0:
            raise DataError(self.path, f"a string of negative length {n}; the pickle is corrupt")
        text = op in (pickle.BINUNICODE, pickle.BINUNICODE8)
        if n < BIG:
            data = self.read_exactly(n)
            if text:
                self.append(str(data, "utf-8", "surrogatepass"))
            else:
                self.append(data.decode("latin1") if op == pickle.BINSTRING else data)
            return
        check_memory(n, f"{self.path}: an array of the pickle")
        # A large text is an array's bytes as latin1 (Python 3, protocol 2): decoded a step at a time and
        # encoded back to those bytes. At most n bytes: pages past `filled` are never touched.
        buffer, filled = np.empty(n, np.uint8), 0
        decoder = codecs.getincrementaldecoder("utf-8")()
        for start in range(0, n, _STEP):
            step = min(_STEP, n - start)
            chunk = self.read_exactly(step)
            if text:
                try:
                    chunk = decoder.decode(chunk, final=start + step == n).encode("latin1")
                except (UnicodeDecodeError, UnicodeEncodeError) as e:
                    raise DataError(self.path, f"a string that is no array's bytes ({e.reason})") from None
            buffer[filled : filled + len(chunk)] = np.frombuffer(chunk, np.uint8)
            filled += len(chunk)
        self.append(_Raw(buffer[:filled]))


def _array(a, path: Path):
    """The NumPy array a stand-in of the pickle describes: a view of the bytes read for it, no copy."""
    if not isinstance(a, _Array):
        return a
    if not (isinstance(a.state, tuple) and len(a.state) == 5):
        raise DataError(path, "an array without its shape, dtype and data")
    _, shape, dtype, fortran, raw = a.state
    if isinstance(raw, (str, bytes)):  # a small array
        raw = _Raw(np.frombuffer(bytearray(raw.encode("latin1") if isinstance(raw, str) else raw), np.uint8))
    if not (
        isinstance(raw, _Raw)
        and isinstance(dtype, np.dtype)
        and not dtype.hasobject
        and isinstance(shape, tuple)
        and all(isinstance(k, int) and k >= 0 for k in shape)
        and math.prod(shape) * dtype.itemsize == raw.buffer.size
    ):
        raise DataError(path, f"an array of shape {shape} and {dtype} does not match its data")
    return raw.buffer.view(dtype).reshape(shape, order="F" if fortran else "C")


def load_book_pickle(path) -> HostData:
    """The book's ``mnist.pkl.gz``: (training, validation, test), each (images float (n, 784), labels (n,))."""
    path = Path(path)
    try:
        with open_regular(path, "pickle file") as raw, gzip.GzipFile(fileobj=raw) as f:
            splits = _BookUnpickler(f, path).load()
        if isinstance(splits, tuple):
            splits = tuple(tuple(_array(a, path) for a in s) if isinstance(s, tuple) else s for s in splits)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt gzip or pickle: any failure is the file's
        raise DataError(path, f"not a readable pickle ({type(e).__name__}: {e})") from None
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(_is_split(s) for s in splits)):
        raise DataError(path, "expected the book's (training, validation, test) tuples of (images, labels)")
    widths = {s[0].shape[1] for s in splits}
    if len(widths) != 1:
        raise DataError(path, f"the splits have images of different sizes {sorted(widths)}")
    (width,) = widths
    side = math.isqrt(width)
    train, validation, test = ((np.asarray(x, np.float32), np.asarray(y, np.int64)) for x, y in splits)
    if any(s[1].min(initial=0) < 0 for s in (train, validation, test)):
        raise DataError(path, "negative labels")
    n_classes = _classes(np.concatenate([train[1], validation[1]]), test[1], path)
    return HostData(
        train=train,
        validation=validation,
        test=test,
        image_shape=(side, side) if side * side == width else (1, width),
        n_classes=n_classes,
        source=str(path.resolve()),
        files=(path,),
    )


def _is_split(split) -> bool:
    return (
        isinstance(split, tuple)
        and len(split) == 2
        and all(isinstance(a, np.ndarray) for a in split)
        and split[0].ndim == 2
        and split[0].dtype.kind == "f"
        and split[1].ndim == 1
        and split[1].dtype.kind in "iu"
        and len(split[0]) == len(split[1])
    )
