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

_RECONSTRUCT = np.empty(0).__reduce__()[0]  # the function NumPy pickles arrays with, without importing numpy.core
BIG = 1 << 20  # byte strings from this size up are read straight into the array they become
MAX_OPCODES = 100_000  # the book's file has about a hundred: a pickle of millions of small objects is not it
_STEP = 1 << 24  # bytes read at a time


class _Raw:
    """A large byte string of the pickle, read into a uint8 array that the NumPy array it holds becomes."""

    __slots__ = ("buffer",)

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer


def _encode(text, encoding="utf-8"):
    """``_codecs.encode``, with which Python 3 pickles bytes in protocol 2: a large string is already bytes."""
    if isinstance(text, _Raw):
        if encoding != "latin1":
            raise DataError(f"refused: bytes encoded as {encoding!r}, not latin1")
        return text
    return codecs.encode(text, encoding)


class _BookUnpickler(pickle._Unpickler):
    """Admits NumPy arrays and plain tuples, nothing else: a pickle can otherwise run any code.

    The pure-Python unpickler, so that each array's bytes are decoded once, into the array itself: the C
    unpickler makes a bytes object (and, from Python 2, a str) and NumPy then copies it, 2-3x the data.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # NumPy 1 wrote this name
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _encode,  # bytes in protocol-2 pickles written by Python 3
    }

    read: Callable[[int], bytes]  # set by load(), as in pickle's own

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # the book's file is a Python 2 pickle
        self.path = path
        self.opcodes = 0

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"{self.path}: refused: the pickle asks for {module}.{name}; only NumPy arrays are allowed")
        return self.ALLOWED[(module, name)]

    def read_exactly(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise DataError(f"{self.path}: truncated: the pickle ends inside a string of {n} bytes")
        return data

    def read_raw(self, n: int) -> _Raw:
        """``n`` bytes into a new uint8 array, ``_STEP`` at a time: the only copy they will have."""
        check_memory(n, f"{self.path}: an array of the pickle")
        buffer = np.empty(n, np.uint8)
        for start in range(0, n, _STEP):
            buffer[start : start + _STEP] = np.frombuffer(self.read_exactly(min(_STEP, n - start)), np.uint8)
        return _Raw(buffer)


def _length(unpickler, fmt: str) -> int:
    (n,) = struct.unpack(fmt, unpickler.read_exactly(struct.calcsize(fmt)))
    if n < 0:
        raise DataError(f"{unpickler.path}: a string of negative length {n}; the pickle is corrupt")
    return n


def _load_bytes(unpickler, fmt: str, text: bool) -> None:
    """BINSTRING (Python 2's str, read as latin1), BINBYTES, BINBYTES8: a large one straight into an array."""
    n = _length(unpickler, fmt)
    if n >= BIG:
        unpickler.append(unpickler.read_raw(n))
    else:
        data = unpickler.read_exactly(n)
        unpickler.append(data.decode("latin1") if text else data)


def _load_unicode(unpickler, fmt: str) -> None:
    """BINUNICODE(8): text in UTF-8. A large one is an array's bytes as latin1 text (Python 3, protocol 2):
    decoded a step at a time and encoded back to those bytes, into the array."""
    n = _length(unpickler, fmt)
    if n < BIG:
        unpickler.append(str(unpickler.read_exactly(n), "utf-8", "surrogatepass"))
        return
    check_memory(n, f"{unpickler.path}: an array of the pickle")
    buffer, filled = np.empty(n, np.uint8), 0  # at most n bytes: pages past `filled` are never touched
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, n, _STEP):
        step = min(_STEP, n - start)
        try:
            chunk = decoder.decode(unpickler.read_exactly(step), final=start + step == n).encode("latin1")
        except (UnicodeDecodeError, UnicodeEncodeError) as e:
            raise DataError(f"{unpickler.path}: a string that is no array's bytes ({e.reason})") from None
        buffer[filled : filled + len(chunk)] = np.frombuffer(chunk, np.uint8)
        filled += len(chunk)
    unpickler.append(_Raw(buffer[:filled]))


def _load_build(unpickler) -> None:
    """BUILD: an array whose bytes were read into a buffer becomes a view of that buffer (no copy)."""
    stack = unpickler.stack
    state, inst = stack[-1], stack[-2] if len(stack) > 1 else None
    if not (isinstance(inst, np.ndarray) and isinstance(state, tuple) and len(state) == 5):
        _BUILD(unpickler)
        return
    _, shape, dtype, fortran, raw = state
    if not isinstance(raw, _Raw):
        _BUILD(unpickler)
        return
    if not (isinstance(dtype, np.dtype) and not dtype.hasobject and isinstance(shape, tuple)
            and all(isinstance(k, int) and k >= 0 for k in shape)
            and math.prod(shape) * dtype.itemsize == raw.buffer.size):  # fmt: skip
        raise DataError(f"{unpickler.path}: an array of shape {shape} and {dtype} does not match its data")
    array = raw.buffer.view(dtype).reshape(shape, order="F" if fortran else "C")
    stack.pop()
    stack[-1] = array
    for key, value in list(unpickler.memo.items()):  # a later reference to the array gets this one
        if value is inst:
            unpickler.memo[key] = array


def _counted(load):
    """An opcode's loader, counting: a pickle of more than MAX_OPCODES is refused before it fills the memory."""

    def counted(unpickler) -> None:
        unpickler.opcodes += 1
        if unpickler.opcodes > MAX_OPCODES:
            raise DataError(f"{unpickler.path}: more than {MAX_OPCODES:,} objects; not the book's pickle")
        load(unpickler)

    return counted


_BUILD = pickle._Unpickler.dispatch[pickle.BUILD[0]]
_BookUnpickler.dispatch = {code: _counted(load) for code, load in pickle._Unpickler.dispatch.items()}
for _opcode, _fmt in ((pickle.BINSTRING, "<i"), (pickle.BINBYTES, "<I"), (pickle.BINBYTES8, "<Q")):
    _BookUnpickler.dispatch[_opcode[0]] = _counted(
        functools.partial(_load_bytes, fmt=_fmt, text=_opcode == pickle.BINSTRING)
    )
for _opcode, _fmt in ((pickle.BINUNICODE, "<I"), (pickle.BINUNICODE8, "<Q")):
    _BookUnpickler.dispatch[_opcode[0]] = _counted(functools.partial(_load_unicode, fmt=_fmt))
_BookUnpickler.dispatch[pickle.BUILD[0]] = _counted(_load_build)


def load_book_pickle(path) -> HostData:
    """The book's ``mnist.pkl.gz``: (training, validation, test), each (images float (n, 784), labels (n,))."""
    path = Path(path)
    try:
        with open_regular(path, "pickle file") as raw, gzip.GzipFile(fileobj=raw) as f:
            splits = _BookUnpickler(f, path).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt gzip or pickle: any failure is the file's
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(_is_split(s) for s in splits)):
        raise DataError(f"{path}: expected the book's (training, validation, test) tuples of (images, labels)")
    widths = {s[0].shape[1] for s in splits}
    if len(widths) != 1:
        raise DataError(f"{path}: the splits have images of different sizes {sorted(widths)}")
    (width,) = widths
    side = math.isqrt(width)
    train, validation, test = ((np.asarray(x, np.float32), np.asarray(y, np.int64)) for x, y in splits)
    if any(s[1].min(initial=0) < 0 for s in (train, validation, test)):
        raise DataError(f"{path}: negative labels")
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
