"""The book's mnist.pkl.gz, through an unpickler that admits only NumPy arrays and tuples."""

import gzip
import os
import pickle
import re

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
