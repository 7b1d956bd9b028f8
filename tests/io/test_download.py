"""Downloads from a loopback HTTP server: mirrors in order, checksums, nothing half-written."""

import gzip
import http.server
import re
import threading

import pytest
from helpers import MNIST, assert_one_line_error, cli

from gpunet.data import DataError
from gpunet.io.download import MNIST as FILES
from gpunet.io.download import download


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/NAME serves data/NAME, /corrupt/NAME the same with one byte changed, anything else is 404."""

    requests: list = []

    def do_GET(self):
        self.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if kind not in ("good", "corrupt") or name not in FILES:
            self.send_error(404)
            return
        body = bytearray((MNIST / name).read_bytes())
        if kind == "corrupt":
            body[len(body) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 only, for this test, stopped after it."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 10
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    Handler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_404_mirror_is_skipped_and_verified_files_land(tmp_path, server):
    folder = tmp_path / "mnist"
    fetched = download(folder, [f"{server}/missing/", f"{server}/good/"], say=lambda *a, **k: None)
    assert sorted(p.name for p in fetched) == sorted(FILES)
    for name in FILES:
        assert (folder / name).read_bytes() == (MNIST / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no temporary files left
    assert Handler.requests[:2] == ["/missing/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz"]


def test_a_corrupted_download_leaves_nothing_and_the_error_names_every_mirror(tmp_path, server):
    folder = tmp_path / "mnist"
    folder.mkdir()
    bases = [f"{server}/corrupt/", f"{server}/missing/"]
    with pytest.raises(DataError) as e:
        download(folder, bases, say=lambda *a, **k: None)
    message = str(e.value)
    assert "\n" not in message and "checksum mismatch" in message and "404" in message
    for base in bases:
        assert base.removeprefix("http://") in message
    assert list(folder.iterdir()) == []


def test_files_already_there_are_not_fetched_again(tmp_path, server):
    folder = tmp_path / "mnist"
    folder.mkdir()
    raw = gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(raw)  # the raw file counts as present
    fetched = download(folder, [f"{server}/good/"], say=lambda *a, **k: None)
    assert len(fetched) == 3 and not (folder / "t10k-labels-idx1-ubyte.gz").exists()


def test_train_downloads_verifies_and_trains_when_the_data_is_missing(tmp_path, server, monkeypatch):
    folder = tmp_path / "fresh"
    folder.mkdir()  # an empty folder named by --data-dir is filled; a missing one is refused (a typo, maybe)
    monkeypatch.setenv("GPUNET_MNIST_MIRRORS", f"{server}/missing/ {server}/good/")
    run = cli("train", "--device", "cpu", "--epochs", "1", "--seed", "0", "--data-dir", str(folder))
    assert run.returncode == 0, run.stderr
    assert int(re.search(r"^Epoch 0: (\d+) / 10000", run.stdout, re.M).group(1)) >= 9000
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    verified = cli("data", "verify", "--data-dir", str(folder))
    assert verified.returncode == 0 and verified.stdout.count("ok ") == 5


def test_cli_download_failure_is_one_final_line(tmp_path, server):
    folder = tmp_path / "fresh"
    run = cli("data", "download", "--data-dir", str(folder), "--mirror", f"{server}/corrupt/")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("gpunet: error: could not download") and server.removeprefix("http://") in last
    assert not folder.exists()


def test_train_with_no_download_does_not_touch_the_network(tmp_path, server, monkeypatch):
    monkeypatch.setenv("GPUNET_MNIST_MIRRORS", f"{server}/good/")
    run = cli("train", "--device", "cpu", "--data-dir", str(tmp_path), "--no-download")
    assert_one_line_error(run, "file not found")
    assert Handler.requests == []


def test_verify_finds_changed_content(tmp_path):
    for name in FILES:
        (tmp_path / name).write_bytes((MNIST / name).read_bytes())
    labels = bytearray(gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    assert_one_line_error(cli("data", "verify", "--data-dir", str(tmp_path)), "t10k-labels", "checksum")
