"""The IDX loader on small files written by the tests."""

import gzip

import numpy as np
import pytest
from helpers import write_idx, write_mnist_like

from gpunet.data import DataError, load_host, pin
from gpunet.io.idx import read_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trips(tmp_path, rng, name, dtype):
    array = (rng.random((3, 4, 5)) * 100).astype(dtype)
    got = read_idx(write_idx(tmp_path / name, array))
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, array)


def _valid(tmp_path):
    return (
        (tmp_path / "ok.idx").read_bytes()
        if (tmp_path / "ok.idx").exists()
        else write_idx(tmp_path / "ok.idx", np.arange(24, dtype=np.uint8).reshape(2, 3, 4)).read_bytes()
    )


BAD = {
    "empty": lambda good: b"",
    "bad magic": lambda good: b"\x01\x02" + good[2:],
    "unknown type code": lambda good: good[:2] + b"\x07" + good[3:],
    "zero dimensions": lambda good: good[:3] + b"\x00",
    "truncated header": lambda good: good[:6],
    "truncated payload": lambda good: good[:-1],
    "trailing garbage": lambda good: good + b"\x00",
    "absurd size": lambda good: good[:4] + b"\xff\xff\xff\xff" * 3,
}


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("compressed", [False, True])
def test_malformed_idx_is_one_clear_error(tmp_path, case, compressed):
    content = BAD[case](_valid(tmp_path))
    path = tmp_path / ("bad.idx.gz" if compressed else "bad.idx")
    path.write_bytes(gzip.compress(content) if compressed else content)
    with pytest.raises(DataError) as e:
        read_idx(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message


def test_not_gzip_with_gz_name_and_cut_gzip_stream(tmp_path):
    good = _valid(tmp_path)
    (tmp_path / "plain.gz").write_bytes(good)
    cut = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(cut[: len(cut) // 2])
    for name in ("plain.gz", "cut.gz"):
        with pytest.raises(DataError, match=name):
            read_idx(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize("raw", [False, True])
def test_load_host_splits_train_into_train_and_validation(tmp_path, raw):
    files = write_mnist_like(tmp_path, n_train=30, n_test=7, rows=5, cols=4, raw=raw)
    host = load_host(tmp_path, validation_size=12)
    images, labels = files["train"]
    assert host.image_shape == (5, 4)
    assert np.array_equal(host.train[0], images[:18].reshape(18, 20)) and np.array_equal(host.train[1], labels[:18])
    assert np.array_equal(host.validation[0], images[18:].reshape(12, 20))
    assert np.array_equal(host.test[1], files["t10k"][1])
    assert host.n_classes == 1 + labels.max()


def test_environment_variable_names_the_data_folder(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "elsewhere", 10, 5, rows=2, cols=2)
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path / "elsewhere"))
    assert load_host(validation_size=0).train[0].shape == (10, 4)


def test_count_mismatch_and_bad_split(tmp_path):
    write_mnist_like(tmp_path, 10, 5, rows=2, cols=2)
    with pytest.raises(DataError, match="does not fit"):
        load_host(tmp_path, validation_size=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="9 labels for 10 images"):
        load_host(tmp_path, validation_size=0)


def test_pin_scales_pixels_and_one_hot_encodes_on_the_device(tmp_path, backend):
    files = write_mnist_like(tmp_path, 12, 4, rows=3, cols=3, n_classes=4)
    host = load_host(tmp_path, validation_size=2)
    data = pin(host, backend, backend.xp.float32)
    x, y = (backend.to_host(a) for a in data.training_data)
    images, labels = files["train"]
    np.testing.assert_array_equal(x, images[:10].reshape(10, 9).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, np.eye(host.n_classes, dtype=np.float32)[labels[:10]])
    assert np.array_equal(backend.to_host(data.test_data[1]), files["t10k"][1])
    assert data.nbytes == (16 * 9) * 4 + 16 * 8 + 10 * host.n_classes * 4


def test_shipped_mnist_is_the_canonical_data():
    """The files in data/ decompress to the published MNIST content (data/README.md)."""
    import hashlib
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "data"
    want = {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
    for name, digest in want.items():
        assert hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest() == digest
    host = load_host(folder)
    assert list(host.train[1][:6]) == [5, 0, 4, 1, 9, 2]
    assert (len(host.train[1]), len(host.validation[1]), len(host.test[1])) == (50_000, 10_000, 10_000)


def test_test_labels_outside_the_training_classes_are_an_error(tmp_path):
    write_mnist_like(tmp_path, 20, 5, rows=2, cols=2, n_classes=3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 255, 1], np.uint8))
    with pytest.raises(DataError, match="label 255 is outside the 3 classes"):
        load_host(tmp_path, validation_size=0)


@pytest.mark.parametrize("case", BAD)
def test_malformed_files_end_gpunet_train_with_one_line(tmp_path, case):
    from helpers import assert_one_line_error, cli

    write_mnist_like(tmp_path, 30, 10, rows=3, cols=4)
    good = write_idx(tmp_path / "ok.idx", np.arange(24, dtype=np.uint8).reshape(2, 3, 4)).read_bytes()
    (tmp_path / "ok.idx").unlink()
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(gzip.compress(BAD[case](good)))
    run = cli("train", "--device", "cpu", "--data-dir", str(tmp_path), "--no-download", "--validation-size", "0")
    assert_one_line_error(run, str(target))
