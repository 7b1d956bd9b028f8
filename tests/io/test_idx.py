"""IDX files (io/idx.py). Damaged input: files that claim more than they hold, or more than their partner,
refused before decoding; and `predict` classifies an IDX file a chunk at a time, whatever its header claims."""

import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, small_mnist, train_on, write_idx, write_mnist_like

import gpunet.io.find
import gpunet.io.fs
import gpunet.io.idx
from gpunet.data import DataError
from gpunet.io.idx import read_idx
from gpunet.io.images import load_inputs
from gpunet.network import Network


def _zeros_gz(path, n_images, rows=28, cols=28):
    """A valid IDX header over ``n_images`` images of zeros, gzip-compressed (a bomb: ~0.1% of its size)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">3I", n_images, rows, cols))
        zeros, left = bytes(1 << 22), n_images * rows * cols
        while left:
            f.write(zeros[: min(left, len(zeros))])
            left -= min(left, len(zeros))
    return path


def _peak(code, *args):
    """(stdout, stderr, status, VmHWM in bytes) of ``code`` run in a fresh interpreter."""
    probe = "\nprint(next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    run = subprocess.run([sys.executable, "-c", code + probe, *map(str, args)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
    *out, peak = run.stdout.splitlines()
    return "\n".join(out), run.stderr, run.returncode, int(peak)


# Damaged input: headers that claim more than the file or its partner holds
@pytest.mark.parametrize("which", ["train", "t10k"])
def test_images_claiming_more_than_the_labels_are_refused_before_a_byte_is_decoded(tmp_path, monkeypatch, which):
    write_mnist_like(tmp_path, 30, 10)
    # The header claims 2.7 million images, the payload holds none: only the header can have been read.
    (tmp_path / f"{which}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x03" + struct.pack(">3I", 2_700_000, 28, 28))
    )
    decoded = []
    payload = gpunet.io.idx._payload
    monkeypatch.setattr(gpunet.io.idx, "_payload", lambda f, h, *a: decoded.append(h.path.name) or payload(f, h, *a))
    n = 30 if which == "train" else 10
    run = cli("data", "info", "--data-dir", tmp_path)
    assert_one_line_error(run, f"{n} labels for 2700000 images", f"{which}-labels-idx1-ubyte")
    assert decoded == []


def test_train_and_test_images_of_different_sizes_are_refused_by_their_headers(tmp_path, monkeypatch):
    write_mnist_like(tmp_path, 30, 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 20, 20), np.uint8))
    decoded = []
    payload = gpunet.io.idx._payload
    monkeypatch.setattr(gpunet.io.idx, "_payload", lambda f, h, *a: decoded.append(h.path.name) or payload(f, h, *a))
    assert_one_line_error(cli("data", "info", "--data-dir", tmp_path), "(20, 20)", "(28, 28)")
    assert decoded == []


PEAK_INFO = "import sys; from gpunet.cli import main; print(main(['data', 'info', '--data-dir', sys.argv[1]]))"


def test_peak_memory_of_a_bomb_with_a_short_labels_file_is_the_interpreters(tmp_path):
    """400,000 images of zeros (314 MB decoded, a few hundred KB on disk) with 30 labels: main decoded them all."""
    write_mnist_like(tmp_path, 30, 10)
    _zeros_gz(tmp_path / "train-images-idx3-ubyte.gz", 400_000)
    out, err, status, peak = _peak(PEAK_INFO, tmp_path)
    assert out == "2" and "30 labels for 400000 images" in err, (out, err)
    assert peak < 200 << 20, peak


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.npz"
    Network([784, 5, 10], seed=3, device="cpu").save(path)
    return path


def test_predict_reads_an_idx_file_in_chunks_and_labels_every_image(tmp_path, model):
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "ten.gz", images)
    chunks = list(load_inputs([path], 784, chunk=3))
    assert [(len(x), first) for _, x, first in chunks] == [(3, 0), (3, 3), (3, 6), (1, 9)]
    np.testing.assert_array_equal(np.concatenate([x for _, x, _ in chunks]), images.reshape(10, 784) / 255.0)
    run = cli("predict", model, path)
    assert run.returncode == 0, run.stderr
    net = Network.load(model, device="cpu")
    expected = [int(np.argmax(net.feedforward(images[k].reshape(784, 1) / 255.0))) for k in range(10)]
    got = re.findall(r"^\S+\[(\d+)\]: (\d)", run.stdout, re.M)
    assert [(int(k), int(d)) for k, d in got] == list(enumerate(expected))


def test_predict_streams_an_idx_bomb_in_bounded_memory(tmp_path, model):
    """100,000 images of zeros: main decoded them all and made float64 rows of them (700 MB); chunks stay small."""
    path = _zeros_gz(tmp_path / "bomb.gz", 100_000)
    code = "import sys; from gpunet.cli import main; s = main(['predict', sys.argv[1], sys.argv[2]]); print(s)"
    out, err, status, peak = _peak(code, model, path)
    lines = out.splitlines()
    assert status == 0 and lines[-1] == "0" and len(lines) == 100_001, (status, err)
    assert lines[-2].startswith(f"{path}[99999]: ")
    assert peak < 250 << 20, peak


def test_predict_on_a_truncated_bomb_is_one_line(tmp_path, model):
    path = tmp_path / "claims.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x03" + struct.pack(">3I", 2_700_000, 28, 28) + bytes(784 * 5)))
    run = cli("predict", model, path)
    assert_one_line_error(run, "truncated", str(path))


# Gzip bombs and impossible headers
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


@pytest.mark.parametrize("shape", [(0, 2**32 - 1, 2**32 - 1), (0, 28, 2**32 - 1), (5, 0, 28), (5, 28, 0)], ids=str)
def test_a_zero_dimension_or_a_huge_one_is_refused_before_allocating(tmp_path, shape):
    folder = small_mnist(tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    header = b"\0\0\x08\x03" + struct.pack(">3I", *shape)
    (folder / "t10k-images-idx3-ubyte").write_bytes(header)
    assert_one_line_error(train_on(folder, "--seed", "0"), "t10k-images-idx3-ubyte", str(shape))


def test_an_empty_count_with_sane_images_reads_as_no_images(tmp_path):
    images = read_idx(write_idx(tmp_path / "none.idx", np.zeros((0, 28, 28), np.uint8)))
    assert images.shape == (0, 28, 28)


@pytest.fixture(scope="session")
def gzip_bomb(tmp_path_factory):
    """1 GiB decoded, ~5 MB on disk: built once per session."""
    return _gzip_bomb(tmp_path_factory.mktemp("bomb") / "train-images-idx3-ubyte.gz", BOMB_IMAGES)


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


def test_unit_scales_pixels_once_and_leaves_floats_as_they_are():
    from gpunet.io.idx import unit

    pixels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(unit(pixels, np.float32), pixels.astype(np.float32) / np.float32(255))
    assert unit(pixels).dtype == np.float64 and unit(pixels)[-1] == 1.0
    floats = np.linspace(0, 1, 5, dtype=np.float32)
    assert np.array_equal(unit(floats, np.float32), floats)
