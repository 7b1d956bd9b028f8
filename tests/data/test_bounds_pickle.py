"""Issue 22.2: the book's pickle decoded once, each array's bytes straight into the array (peak ~1x, not 2-4x)."""

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from gpunet.data import DataError, load_book_pickle


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
