"""Damaged and hostile data files, and where the data is found: one line each, bounded memory, no hang."""

import gzip
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, book_parameters, cli, write_idx, write_mnist_like

import gpunet.io.find
import gpunet.io.fs
from gpunet.book import reference
from gpunet.data import DataError
from gpunet.errors import GpunetError
from gpunet.io.idx import read_idx
from gpunet.network import Network

ROOT = Path(__file__).resolve().parents[2]
BOMB_IMAGES = (1 << 30) // 784  # 28x28 images of zeros: 1 GiB decoded, ~5 MB compressed


def _gzip_bomb(path, n_images):
    """A valid IDX header over n_images 28x28 images of zeros, gzip-compressed (~0.4% of the decoded size)."""
    zeros = bytes(1 << 24)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">3I", n_images, 28, 28))
        left = n_images * 784
        while left:
            f.write(zeros[: min(left, len(zeros))])
            left -= min(left, len(zeros))
    return path


@pytest.fixture(scope="session")
def gzip_bomb(tmp_path_factory):
    """1 GiB decoded, ~5 MB on disk: built once per session."""
    return _gzip_bomb(tmp_path_factory.mktemp("bomb") / "train-images-idx3-ubyte.gz", BOMB_IMAGES)


def _small(tmp_path, n_train=30, n_test=10):
    write_mnist_like(tmp_path, n_train, n_test)
    return tmp_path


def _train(folder, *extra):
    return cli("train", "--device", "cpu", "--epochs", "1", "--seed", "0", "--validation-size", "0",
               "--data-dir", folder, *extra)  # fmt: skip


# issue 14.1
def test_zero_test_images_is_one_line_before_training_naming_the_other_evals(tmp_path):
    folder = _small(tmp_path, n_test=0)
    run = _train(folder)
    assert_one_line_error(run, "no test images", "--eval validation", "--eval none")
    assert "Epoch" not in run.stdout
    assert _train(folder, "--eval", "none").returncode == 0


# issue 14.2
@pytest.mark.parametrize("shape", [(0, 2**32 - 1, 2**32 - 1), (0, 28, 2**32 - 1), (5, 0, 28), (5, 28, 0)], ids=str)
def test_a_zero_dimension_or_a_huge_one_is_refused_before_allocating(tmp_path, shape):
    folder = _small(tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    header = b"\0\0\x08\x03" + struct.pack(">3I", *shape)
    (folder / "t10k-images-idx3-ubyte").write_bytes(header)
    assert_one_line_error(_train(folder), "t10k-images-idx3-ubyte", str(shape))


def test_an_empty_count_with_sane_images_reads_as_no_images(tmp_path):
    images = read_idx(write_idx(tmp_path / "none.idx", np.zeros((0, 28, 28), np.uint8)))
    assert images.shape == (0, 28, 28)


# issue 14.3
def test_a_gzip_bomb_that_does_not_fit_is_refused_up_front(gzip_bomb, monkeypatch):
    monkeypatch.setattr(gpunet.io.fs, "available_memory", lambda: 256 << 20)
    with pytest.raises(DataError) as e:
        read_idx(gzip_bomb)
    message = str(e.value)
    assert "\n" not in message and str(gzip_bomb) in message and "1024.0 MiB" in message and "256.0 MiB" in message


def test_a_gzip_bomb_under_ulimit_is_one_line(gzip_bomb):
    """Under `ulimit -v` (1 GiB of address space) the 1 GiB file plus the interpreter do not fit: one line."""
    folder = gzip_bomb.parent
    write_mnist_like(folder / "other", 10, 5)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(BOMB_IMAGES, np.uint8))  # as many as the images claim
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        if not (folder / name).exists():
            (folder / name).write_bytes((folder / "other" / name).read_bytes())
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    code = limit + "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run(
        [sys.executable, "-c", code, "data", "info", "--data-dir", str(folder)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert_one_line_error(run, "train-images-idx3-ubyte.gz", "MiB is free")


PEAK = """
import sys
import gpunet.io.fs
from gpunet.io.idx import read_idx
if sys.argv[2] == "refuse":
    gpunet.io.fs.available_memory = lambda: 256 << 20
try:
    print(read_idx(sys.argv[1]).shape)
except Exception as e:
    print(type(e).__name__)
# VmHWM is this process's own peak; ru_maxrss would include the forking parent's (a large pytest)
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


@pytest.mark.parametrize("case", ["refuse", "decode"])
def test_peak_memory_of_a_gzip_bomb(gzip_bomb, tmp_path, case):
    """Refused (1 GiB): the peak stays the interpreter's. Decoded (256 MiB): one array, no copies (main: 3 of them)."""
    n = BOMB_IMAGES if case == "refuse" else BOMB_IMAGES // 4
    path = gzip_bomb if case == "refuse" else _gzip_bomb(tmp_path / "quarter.gz", n)
    run = subprocess.run([sys.executable, "-c", PEAK, str(path), case], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
    result, peak = run.stdout.split()[0], int(run.stdout.split()[-1])
    if case == "refuse":
        assert result == "DataError" and peak < 300 << 20, (result, peak)
    else:
        assert result == f"({n}," and peak < n * 784 + (200 << 20), (result, peak)


# issue 14.4
def _unblock_later(fifo: Path, seconds: float = 3.0) -> threading.Thread:
    """Should a reader block on the FIFO (today's main), open its other end after a while so the test ends."""

    def writer():
        deadline = time.monotonic() + seconds + 5
        time.sleep(seconds)
        while time.monotonic() < deadline:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:  # no reader: nothing is blocked
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"])
def test_a_fifo_as_a_data_file_is_refused_at_once(tmp_path, name):
    folder = _small(tmp_path)
    for stale in folder.glob(name.removesuffix(".gz") + "*"):
        stale.unlink()
    os.mkfifo(folder / name)
    _unblock_later(folder / name)
    assert_one_line_error(_train(folder), name, "not a regular file")


def test_a_fifo_as_the_books_pickle_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "mnist.pkl.gz")
    _unblock_later(tmp_path / "mnist.pkl.gz")
    assert_one_line_error(cli("data", "info", "--data", tmp_path / "mnist.pkl.gz"), "not a regular file")


# issue 13.7
def test_the_shipped_data_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    run = cli("data", "info")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(ROOT / "data")) and "50000 / 10000 / 10000" in run.stdout


def test_data_dirs_in_order_and_the_cache_from_platformdirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = gpunet.data.data_dirs()
    assert found[0] == Path("data") and found[1] == ROOT / "data" and found[-1] == tmp_path / "cache/gpunet/mnist"
    assert gpunet.data.data_dirs("elsewhere") == [Path("elsewhere")]
    monkeypatch.setenv("GPUNET_DATA", "from-env")
    assert gpunet.data.data_dirs() == [Path("from-env")]


def test_nothing_found_and_the_download_fails_is_one_short_line_naming_folders_and_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(gpunet.io.find, "checkout_data", lambda: [])  # as if installed from a wheel
    run = cli("train", "--device", "cpu")  # the mirror is a closed port on 127.0.0.1 (conftest)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("gpunet: error: could not download") and len(last) < 400, last
    for fragment in ("data", str(tmp_path / "cache" / "gpunet" / "mnist"), "--data-dir", "GPUNET_DATA", "--mirror"):
        assert fragment in last
    assert not (tmp_path / "cache" / "gpunet" / "mnist").exists()  # nothing left behind
    offline = cli("data", "info")
    assert_one_line_error(offline, "no MNIST data in ./data, ", "--data-dir", "GPUNET_DATA", "gpunet data download")


# issue 13.8
@pytest.mark.parametrize("command", [("train", "--device", "cpu"), ("data", "download"), ("data", "verify")])
def test_data_dir_naming_a_file_is_one_line(tmp_path, command):
    (tmp_path / "a-file").write_text("not a folder")
    assert_one_line_error(cli(*command, "--data-dir", tmp_path / "a-file"), "a-file", "not a folder")


# issue 13.9
@pytest.mark.parametrize("sizes", [[784, 30], [784, 30, 20]], ids=str)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "portable"])
def test_output_layers_wider_than_the_classes_train_like_the_book_on_targets_as_wide(tmp_path, sizes, fused):
    """The book's per-example code, given one-hot targets as wide as the output layer, computes the same epoch."""
    data = write_mnist_like(tmp_path, 60, 10)
    run = _train(tmp_path, "--sizes", ",".join(map(str, sizes)), "--dtype", "float64", "--eval", "none",
                 "--save", tmp_path / "m.npz", *([] if fused else ["--no-fused"]))  # fmt: skip
    assert run.returncode == 0, run.stderr
    images, labels = data["train"]
    biases, weights, rng = book_parameters(sizes, seed=0)
    x = images.reshape(60, 784, 1) / 255.0
    y = np.eye(sizes[-1])[labels][:, :, None]
    book = reference.Network(sizes, biases=biases, weights=weights)
    book.SGD(list(zip(x, y)), 1, 10, 3.0, orders=[rng.permutation(60)])
    net = Network.load(tmp_path / "m.npz", device="cpu")
    for got, want in zip(net.weights + net.biases, book.weights + book.biases):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


def test_fewer_outputs_than_classes_is_one_line(tmp_path):
    assert_one_line_error(_train(_small(tmp_path), "--sizes", "784,30,5"), "--sizes", "10")


# issue 14.12
def test_parameters_that_cannot_fit_are_refused_before_allocating(tmp_path):
    assert_one_line_error(_train(_small(tmp_path), "--sizes", "784,100000000,10"), "784, 100000000, 10", "GiB")
    with pytest.raises(GpunetError):
        Network([784, 10**8, 10], device="cpu")


def test_data_that_cannot_fit_on_the_device_is_refused_before_copying(tmp_path, monkeypatch):
    folder = _small(tmp_path)  # 40 images: 23 KB and 8 KB of pixels to read, 127 KB as float32 on the device
    monkeypatch.setattr(gpunet.io.fs, "available_memory", lambda: 64 << 10)
    assert_one_line_error(_train(folder, "--sizes", "784,1,10"), "the data as 40 (28, 28) images on cpu", "64.0 KiB")
