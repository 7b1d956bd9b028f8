"""Data is identified by its decoded images and labels, not the bytes of its .gz files, everywhere: resume,
sweeps, Dask workers, the manifest and `data verify` (issue 20, item 5); a --data-dir or GPUNET_DATA that
does not exist is refused, not downloaded into (item 7)."""

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers import MNIST, assert_one_line_error, cli, write_mnist_like

from gpunet import Network
from gpunet.data import DataError
from gpunet.io.download import MNIST as PUBLISHED
from gpunet.sweep import DataSource
from gpunet.sweep.dist import run_on_worker
from gpunet.sweep.grid import Config

FLAGS = ["--device", "cpu", "--sizes", "16,10", "--validation-size", "5"]


@pytest.fixture
def data(tmp_path):
    write_mnist_like(tmp_path / "d", 60, 20, rows=4, cols=4)
    return tmp_path / "d"


def recompress(folder):
    """The same images and labels in other .gz bytes, as another compressor or a mirror would write them."""
    for path in folder.glob("*.gz"):
        before = path.read_bytes()
        path.write_bytes(gzip.compress(gzip.decompress(before), compresslevel=1, mtime=1))
        assert path.read_bytes() != before


def file_bytes_sha256(folder) -> list:
    """What gpunet recorded before: the SHA-256 of each file as stored."""
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir())


def decoded_sha256(path) -> str:
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def test_the_manifest_records_what_data_verify_checks(tmp_path, data):
    from gpunet.io import identity

    for name, published in PUBLISHED.items():  # data verify's checksums: MNIST's own, of the decoded content
        assert identity.content_sha256(MNIST / name) == published.sha256
    log = tmp_path / "run.jsonl"
    assert cli("train", "--data-dir", data, *FLAGS, "--epochs", "1", "--log", log).returncode == 0
    recorded = json.loads(log.read_text().splitlines()[0])["data"]
    assert recorded == {p: decoded_sha256(Path(p)) for p in recorded}
    assert len(recorded) == 4


def test_a_checkpoint_resumes_on_its_data_recompressed_or_raw(tmp_path, data):
    ck = tmp_path / "run.npz"
    assert cli("train", "--data-dir", data, *FLAGS, "--epochs", "1", "--checkpoint", ck).returncode == 0
    recompress(data)
    resumed = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in data.glob("*.gz"):
        (raw / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
    resumed = cli("train", "--data-dir", raw, "--resume", ck, "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    write_mnist_like(tmp_path / "other", 60, 20, rows=4, cols=4, seed=7)
    other = cli("train", "--data-dir", tmp_path / "other", "--resume", ck, "--epochs", "4")
    assert_one_line_error(other, "trained on other data", "--data-dir")


def test_a_checkpoint_names_its_data_by_content_not_by_the_files_bytes(tmp_path, data):
    ck = tmp_path / "run.npz"
    assert cli("train", "--data-dir", data, *FLAGS, "--epochs", "1", "--checkpoint", ck).returncode == 0
    settings = Network.load(ck, device="cpu").record["settings"]
    assert settings["data"] == sorted(decoded_sha256(p) for p in data.iterdir())
    net = Network.load(ck, device="cpu")
    net.record["settings"]["data"] = file_bytes_sha256(data)  # the .gz files' bytes: not their content
    net.save(ck, **net.record)
    resumed = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "2")
    assert_one_line_error(resumed, "trained on other data than")


def test_a_sweep_resumes_on_its_data_recompressed_not_on_files_of_other_bytes(tmp_path, data):
    out = tmp_path / "out"
    args = ["--seeds", "1", "--epochs", "1", *FLAGS]
    assert cli("sweep", *args, "--data-dir", data, "--out", out).returncode == 0
    recompress(data)
    resumed = cli("sweep", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr

    old = tmp_path / "old"
    assert cli("sweep", *args, "--data-dir", data, "--out", old).returncode == 0
    lines = (old / "sweep.jsonl").read_text().splitlines()
    manifest = json.loads(lines[0])
    manifest["data"] = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in manifest["data"]}
    (old / "sweep.jsonl").write_text("\n".join([json.dumps(manifest), *lines[1:]]) + "\n")
    resumed = cli("sweep", "--resume", old)  # the files' bytes are not their content: not the same data
    assert_one_line_error(resumed, "the data differs from the data the sweep started on")


def test_a_worker_accepts_the_same_data_compressed_otherwise(tmp_path, data):
    from gpunet.io import identity

    mirror = tmp_path / "mirror"  # a worker that downloaded MNIST from a mirror: other .gz bytes, same images
    shutil.copytree(data, mirror)
    recompress(mirror)
    started_on = identity.checksums(DataSource(str(data), validation_size=10).load())
    members = [(Config((16, 10), 3.0, 10, "float32"), 1)]
    source = DataSource(str(mirror), validation_size=10)
    assert len(run_on_worker(members, 1, "test", "cpu", source, started_on).records) == 1
    write_mnist_like(mirror, 60, 20, rows=4, cols=4, seed=3)
    with pytest.raises(DataError, match="differs from the data the sweep started on"):
        run_on_worker(members, 1, "test", "cpu", DataSource(str(mirror), validation_size=11), started_on)
