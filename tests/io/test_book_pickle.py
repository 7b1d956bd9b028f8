"""The book's mnist.pkl.gz, through an unpickler that admits only NumPy arrays and tuples."""

import gzip
import io
import os
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_one_line_error, cli

from gpunet.data import DataError, load_book_pickle


def book_pickle(path, rng, n=(60, 20, 20), width=16, classes=4, protocol=2):
    """A file in the book's layout: ((x, y), (x, y), (x, y)) with float32 images in [0, 1)."""
    splits = []
    for k in n:
        y = rng.integers(0, classes, k).astype(np.int64)
        y[:classes] = np.arange(classes)
        splits.append((rng.random((k, width)).astype(np.float32), y))
    path.write_bytes(gzip.compress(pickle.dumps(tuple(splits), protocol=protocol)))
    return splits


@pytest.mark.parametrize("protocol", [2, 4])
def test_the_books_layout_loads(tmp_path, rng, protocol):
    splits = book_pickle(tmp_path / "mnist.pkl.gz", rng, protocol=protocol)
    host = load_book_pickle(tmp_path / "mnist.pkl.gz")
    for (x, y), (want_x, want_y) in zip((host.train, host.validation, host.test), splits):
        assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
    assert host.image_shape == (4, 4) and host.n_classes == 4


# Damaged input: code to run, wrong layouts
class Payload:
    """Unpickling this runs a shell command, as any pickle may."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((Payload(marker),),), protocol=2)))
    with pytest.raises(DataError, match=r"refused: the pickle asks for (posix|os|nt)\.system"):
        load_book_pickle(path)
    assert not marker.exists()
    run = cli("train", "--device", "cpu", "--data", str(path))
    assert_one_line_error(run, "refused")
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        pickle.dumps(([1, 2], [3]), protocol=2),  # lists are not admitted either... nor is the layout right
        pickle.dumps((np.zeros(3), np.zeros(3), np.zeros(3)), protocol=2),
        b"not a pickle at all",
    ],
)
def test_wrong_layouts_are_one_clear_error(tmp_path, content):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(DataError) as e:
        load_book_pickle(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_train_on_the_books_pickle_by_file_and_by_folder(tmp_path, rng):
    book_pickle(tmp_path / "mnist.pkl.gz", rng, n=(200, 40, 50))
    for where in (["--data", str(tmp_path / "mnist.pkl.gz")], ["--data-dir", str(tmp_path)]):
        run = cli("train", "--device", "cpu", "--sizes", "16,8,4", "--epochs", "2", "--seed", "1", *where)
        assert run.returncode == 0, run.stderr
        assert "200 train / 40 validation / 50 test" in run.stdout
        assert re.findall(r"^Epoch \d: \d+ / 50 ", run.stdout, re.M)


# Bounds: each array's bytes decoded once, a pickle of many objects refused
class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote its str (BINSTRING), as in the book's own mnist.pkl.gz."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def write_pickle(path, splits, style):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as f:
        if style == "python2":
            Python2Pickler(f, protocol=2).dump(splits)
        else:
            pickle.dump(splits, f, protocol=int(style[-1]))
    return path


def _splits(n_train, rng=None, width=784):
    x = np.zeros((n_train, width), np.float32) if rng is None else rng.random((n_train, width), dtype=np.float32)
    labels = np.arange(n_train) % 10
    small = (x[:10].copy(), labels[:10].copy())
    return (x, labels), small, small


@pytest.mark.parametrize("style", ["python2", "protocol2", "protocol4"])
def test_every_pickle_style_with_large_arrays_loads_exactly(tmp_path, rng, style):
    """Arrays of more than BIG bytes go the one-copy way; the values are the ones pickled, bit for bit."""
    splits = _splits(600, rng)  # 1.9 MB of images: above BIG
    x = splits[0][0]
    x[0, :256] = np.frombuffer(bytes(range(256)), np.uint8).view(np.float32).repeat(4)[:256]  # every byte value
    host = load_book_pickle(write_pickle(tmp_path / "mnist.pkl.gz", splits, style))
    for got, want in zip((host.train, host.validation, host.test), splits):
        assert got[0].tobytes() == want[0].tobytes() and np.array_equal(got[1], want[1])


def test_an_array_whose_shape_disagrees_with_its_bytes_is_one_line(tmp_path):
    good = io.BytesIO()
    Python2Pickler(good, protocol=2).dump(_splits(400))
    text = good.getvalue().replace(struct.pack("<i", 400 * 784 * 4), struct.pack("<i", 400 * 784 * 4 - 4), 1)
    text = text.replace(bytes(400 * 784 * 4), bytes(400 * 784 * 4 - 4), 1)
    (tmp_path / "m.pkl.gz").write_bytes(gzip.compress(text))
    with pytest.raises(DataError, match="does not match its data"):
        load_book_pickle(tmp_path / "m.pkl.gz")


def test_a_pickle_of_millions_of_small_objects_is_refused_quickly(tmp_path):
    (tmp_path / "m.pkl.gz").write_bytes(gzip.compress(pickle.dumps(tuple([None] * 2_000_000), protocol=2)))
    with pytest.raises(DataError, match="objects; not the book's pickle"):
        load_book_pickle(tmp_path / "m.pkl.gz")


PEAK = """
import sys
from gpunet.data import load_book_pickle
host = load_book_pickle(sys.argv[1])
print(host.train[0].shape)
print(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')))
"""


@pytest.mark.parametrize("style", ["python2", "protocol2"])
def test_peak_memory_of_a_large_pickle_is_about_its_arrays(tmp_path, style):
    """50,000 zero images (157 MB of float32): main peaked at 3x (a str, a bytes, the array); now 1x."""
    n = 50_000
    path = write_pickle(tmp_path / "mnist.pkl.gz", _splits(n), style)
    run = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
    shape, peak = run.stdout.split("\n")[:2]
    assert shape == f"({n}, 784)", run.stderr
    assert int(peak) < n * 784 * 4 + (100 << 20), int(peak) / 1e6
