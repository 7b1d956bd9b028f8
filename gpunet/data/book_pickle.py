"""The book's ``mnist.pkl.gz`` (its own train/validation/test split), unpickled safely."""

from __future__ import annotations

import gzip
import math
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import FileError, open_regular
from .host import HostData, _classes

_RECONSTRUCT = np.empty(0).__reduce__()[0]  # the function NumPy pickles arrays with, without importing numpy.core


class _BookUnpickler(pickle.Unpickler):
    """Admits NumPy arrays and plain tuples, nothing else: a pickle can otherwise run any code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # NumPy 1 wrote this name
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): __import__("codecs").encode,  # bytes in protocol-2 pickles written by Python 3
    }

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # the book's file is a Python 2 pickle
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"{self.path}: refused: the pickle asks for {module}.{name}; only NumPy arrays are allowed")
        return self.ALLOWED[(module, name)]


def load_book_pickle(path) -> HostData:
    """The book's ``mnist.pkl.gz``: (training, validation, test), each (images float (n, 784), labels (n,))."""
    path = Path(path)
    try:
        with open_regular(path, "pickle file") as raw, gzip.GzipFile(fileobj=raw) as f:
            splits = _BookUnpickler(f, path).load()
    except FileError as e:
        raise DataError(str(e)) from None
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
