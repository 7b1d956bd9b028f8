"""MNIST (or any IDX image set): strict file parsing on the host, then pinned on the device once."""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from .errors import GpunetError
from .files import FileError, check_memory, open_regular

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

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATA_HINT = (
    "pass --data-dir or set GPUNET_DATA to a folder holding the four MNIST IDX files (.gz or raw), "
    "or run `gpunet data download`"
)


class DataError(GpunetError):
    """A data file is missing, unreadable or malformed."""


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


DATA_FLAGS = "--data-dir DIR or GPUNET_DATA=DIR"


def data_dirs(path=None) -> list[Path]:
    """Where the data is looked for, in order: ``path``, else $GPUNET_DATA, else ./data, the data/ of the
    checkout gpunet was installed from, and the user's cache folder (where downloads go)."""
    explicit = path or os.environ.get("GPUNET_DATA")
    if explicit:
        return [Path(explicit).expanduser()]
    found: list[Path] = []
    for folder in (Path("data"), *checkout_data(), cache_dir()):
        if all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found


def data_dir(path=None) -> Path:
    """The data folder: the first of :func:`data_dirs` that holds a dataset, else the last (downloads go there)."""
    folders = data_dirs(path)
    for folder in folders:
        if has_data(folder):
            return folder
    return folders[-1]


def has_data(folder: Path) -> bool:
    """The folder holds the four IDX files (.gz or raw) or the book's pickle."""
    return all(locate(folder, stem) for stem in FILES.values()) or os.path.lexists(folder / BOOK_PICKLE)


def checkout_data() -> list[Path]:
    """data/ of the source checkout gpunet runs from, or was pip-installed from (PEP 610 direct_url.json)."""
    roots = [Path(__file__).resolve().parents[1]]
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        url = json.loads(distribution("gpunet").read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://"):
            roots.append(Path(unquote(urlparse(url).path)))
    except (PackageNotFoundError, ValueError, OSError):
        pass
    return [root / "data" for root in roots if (root / "pyproject.toml").is_file() and (root / "data").is_dir()]


def cache_dir() -> Path:
    """The user's cache folder for MNIST (``~/.cache/gpunet/mnist`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("gpunet")) / "mnist"


def as_folder(folder: Path) -> Path:
    """``folder``, refused in one line when it names something that is not a folder."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give {DATA_FLAGS} a folder (it is created if missing)")
    return folder


def not_found(folders, flags: str = "") -> DataError:
    """The one line saying where the data was looked for and how to point elsewhere."""
    where = ", ".join(str(f) for f in folders)
    return DataError(f"no MNIST data in {where}; pass {DATA_FLAGS} to a folder holding it{flags}")


def locate(folder: Path, stem: str) -> Path | None:
    """``stem.gz`` if present, else the raw ``stem``, else None."""
    for name in (stem + ".gz", stem):
        if os.path.lexists(folder / name):  # whatever it is: the reader says if it cannot be read
            return folder / name
    return None


def find_file(folder: Path, stem: str) -> Path:
    """``stem.gz`` if present, else the raw ``stem``; one line if neither is."""
    path = locate(folder, stem)
    if path is None:
        raise DataError(f"{folder / (stem + '.gz')}: file not found; {DATA_HINT}")
    return path


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


@dataclass
class HostData:
    """The three splits on the host: images (n, rows*cols), uint8 pixels or floats in [0, 1], and labels (n,)."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    image_shape: tuple[int, int]
    n_classes: int
    source: str = ""  # the folder or file it was read from
    files: tuple = ()  # the files read

    def describe(self) -> str:
        rows, cols = self.image_shape
        counts = " / ".join(str(len(split[1])) for split in (self.train, self.validation, self.test))
        nbytes = sum(a.nbytes for split in (self.train, self.validation, self.test) for a in split)
        return (
            f"{self.source} | {counts} train / validation / test | {rows}x{cols} images, "
            f"{self.n_classes} classes | {nbytes / 1e6:.1f} MB"
        )


def load_host(folder=None, validation_size: int = 10_000) -> HostData:
    """Read the IDX files and split training into train + the last ``validation_size`` as validation."""
    folder = data_dir(folder)
    paths = {k: find_file(folder, stem) for k, stem in FILES.items()}
    train_x, train_y = read_images_labels(paths["train_images"], paths["train_labels"])
    test_x, test_y = read_images_labels(paths["test_images"], paths["test_labels"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{paths['test_images']}: images are {test_x.shape[1:]}, training images are {train_x.shape[1:]}"
        )
    if not 0 <= validation_size < len(train_x):
        raise DataError(
            f"{paths['train_images']}: validation size {validation_size} does not fit {len(train_x)} training images"
        )
    n_train = len(train_x) - validation_size
    flat = lambda a: a.reshape(len(a), math.prod(a.shape[1:]))  # noqa: E731
    n_classes = _classes(train_y, test_y, paths["test_labels"])
    return HostData(
        train=(flat(train_x[:n_train]), train_y[:n_train]),
        validation=(flat(train_x[n_train:]), train_y[n_train:]),
        test=(flat(test_x), test_y),
        image_shape=tuple(train_x.shape[1:]),
        n_classes=n_classes,
        source=str(folder.resolve()),
        files=tuple(paths.values()),
    )


def _classes(training_labels, test_labels, where) -> int:
    """The number of classes is what the training labels name; a test label beyond them is corrupt data."""
    n_classes = int(training_labels.max(initial=0)) + 1
    if len(test_labels) and test_labels.max() >= n_classes:
        raise DataError(
            f"{where}: test label {test_labels.max()} is outside the {n_classes} classes of the training labels"
        )
    return n_classes


@dataclass
class DeviceData:
    """The splits pinned on one device, in the shapes ``Network.SGD`` takes."""

    training_data: tuple  # (x (n, n_in) in [0, 1], one-hot y (n, n_classes))
    validation_data: tuple  # (x, labels)
    test_data: tuple  # (x, labels)
    n_inputs: int
    n_classes: int
    nbytes: int  # bytes held on the device


def pin_split(backend, images, labels, dtype):
    """One split on the device: uint8 pixels cross as they are and are scaled to [0, 1] there."""
    x = backend.xp.astype(backend.asarray(images), dtype)
    return (x / 255.0 if images.dtype == np.uint8 else x), backend.asarray(labels.astype(np.int64))


def pin(host: HostData, backend, dtype, n_outputs: int | None = None) -> DeviceData:
    """Copy every split to the device once: uint8 pixels cross as they are, then are scaled there.

    The one-hot targets are ``n_outputs`` wide (the output layer, default: one per class); outputs
    beyond the classes are trained towards 0.
    """
    n_outputs = host.n_classes if n_outputs is None else n_outputs
    if n_outputs < host.n_classes:
        raise DataError(f"{n_outputs} outputs cannot name {host.n_classes} classes")
    xp = backend.xp
    itemsize = xp.finfo(dtype).bits // 8
    n, n_train = sum(len(split[1]) for split in (host.train, host.validation, host.test)), len(host.train[1])
    needed = n * (math.prod(host.image_shape) * itemsize + 8) + n_train * n_outputs * itemsize
    backend.check_memory(needed, f"the data as {n:,} {host.image_shape} images on {backend.name}")
    arrays: list = []

    def to_device(images, labels):
        x, y = pin_split(backend, images, labels, dtype)
        arrays.extend((x, y))
        return x, y

    train_x, train_y = to_device(*host.train)
    classes = xp.arange(n_outputs, dtype=xp.int64, device=backend.device)
    one_hot = xp.astype(xp.expand_dims(train_y, axis=1) == classes, dtype)
    arrays.append(one_hot)
    validation, test = to_device(*host.validation), to_device(*host.test)
    return DeviceData(
        training_data=(train_x, one_hot),
        validation_data=validation,
        test_data=test,
        n_inputs=host.image_shape[0] * host.image_shape[1],
        n_classes=host.n_classes,
        nbytes=sum(_nbytes(xp, a) for a in arrays),
    )


def _nbytes(xp, a) -> int:
    info = xp.finfo if xp.isdtype(a.dtype, "real floating") else xp.iinfo
    return a.size * info(a.dtype).bits // 8


BOOK_PICKLE = "mnist.pkl.gz"


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
