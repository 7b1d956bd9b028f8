"""Downloads from hostile mirrors on 127.0.0.1: endless, oversized, dribbling, silent; SIGTERM; stale temporaries."""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, cli

import gpunet.io.download
import gpunet.io.fs
from gpunet.data import DataError
from gpunet.io.download import MNIST, download

ROOT = Path(__file__).resolve().parents[2]
FIRST = "train-images-idx3-ubyte.gz"  # the first file a download fetches


class Hostile(http.server.BaseHTTPRequestHandler):
    """/good/NAME serves data/NAME; the other modes misbehave, each for a bounded time only."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        try:
            getattr(self, "serve_" + mode)(name)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def serve_good(self, name):
        body = (ROOT / "data" / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def serve_endless(self, name):
        """No length, zeros as fast as they go (up to 64 MB)."""
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(1024):
            self.wfile.write(bytes(1 << 16))

    def serve_chunked(self, name):
        """Chunked transfer encoding, endless (up to 64 MB)."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n" % (1 << 16) + bytes(1 << 16) + b"\r\n"
        for _ in range(1024):
            self.wfile.write(chunk)

    def serve_huge(self, name):
        """Says 1 GB up front."""
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        self.wfile.write(bytes(1 << 16))

    def serve_dribble(self, name):
        """A byte every 0.2 s (for at most 10 s): every read succeeds, the file never comes."""
        self.send_response(200)
        self.send_header("Content-Length", str(MNIST[name].size))
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b"\0")
            self.wfile.flush()
            time.sleep(0.2)

    def serve_silent(self, name):
        """Accepts, then says nothing for 10 s."""
        time.sleep(10)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fails(folder, bases, *fragments):
    notes = []
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        download(folder, bases, say=lambda *a, **k: notes.append(" ".join(map(str, a))))
    elapsed = time.monotonic() - start
    message = str(e.value)
    assert "\n" not in message and len(message) < 400, message
    for fragment in fragments:
        assert fragment in message, message
    assert not folder.exists() or list(folder.iterdir()) == []  # no .part, nothing
    return notes, elapsed


@pytest.mark.parametrize(
    "mode,why",
    [
        ("endless", "more than the 9,912,422 bytes"),
        ("chunked", "more than the 9,912,422 bytes"),
        ("huge", "1,000,000,000 bytes offered"),
        ("dribble", "stalled"),
        ("silent", "stalled"),
    ],
)
def test_a_hostile_mirror_is_cut_off_and_leaves_nothing(tmp_path, hostile, quick, mode, why):
    notes, elapsed = _fails(tmp_path / "mnist", [f"{hostile}/{mode}/"], FIRST, why, "--mirror", "--data-dir")
    assert elapsed < 30  # bounded: the server would go on for 10 s or 64 MB


def test_each_mirror_is_named_as_it_is_tried(tmp_path, hostile, quick):
    notes, _ = _fails(tmp_path / "mnist", [f"{hostile}/silent/", f"{hostile}/huge/"], "silent", "huge")
    host = hostile.removeprefix("http://")
    assert notes[0] == f"downloading {FIRST} from {host}/silent/ (mirror 1 of 2)"
    assert notes[1].startswith(f"  {host}/silent/ failed: stalled")
    assert notes[2] == f"downloading {FIRST} from {host}/huge/ (mirror 2 of 2)"


def test_a_file_larger_than_published_is_refused_even_when_a_mirror_is_honest_about_it(tmp_path, hostile, monkeypatch):
    small = {name: p._replace(size=10) for name, p in MNIST.items()}
    monkeypatch.setattr(gpunet.io.download, "MNIST", small)
    _fails(tmp_path / "mnist", [f"{hostile}/good/"], "offered", "MNIST's file has 10")


def test_stale_temporaries_are_removed_on_the_next_download(tmp_path, hostile):
    folder = tmp_path / "mnist"
    folder.mkdir()
    stale = folder / f".{FIRST}.k2x9q_ab.part"  # mkstemp makes 8 characters
    fresh = folder / ".t10k-labels-idx1-ubyte.gz.live1234.part"  # a download running right now
    for part in (stale, fresh):
        part.write_bytes(b"half a file")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    mine = folder / ".notes.part"  # not a download's
    mine.write_text("the user's")
    os.utime(mine, (time.time() - 3600, time.time() - 3600))
    fetched = download(folder, [f"{hostile}/good/"], say=lambda *a, **k: None)
    assert len(fetched) == 4 and not stale.exists() and fresh.exists() and mine.exists()


SLOW = "import gpunet.io.download; gpunet.io.download.GRACE_SECONDS = 60.0; "


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_download_removes_the_temporary(tmp_path, hostile, sig, status):
    folder = tmp_path / "mnist"
    code = SLOW + "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "data", "download", "--data-dir", str(folder), "--mirror", f"{hostile}/dribble/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not list(folder.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(folder.glob("*.part")), "the download never started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert not folder.exists() or list(folder.iterdir()) == []


def test_cli_names_the_mirror_and_ends_with_one_line(tmp_path, hostile, monkeypatch, quick):
    run = cli("data", "download", "--data-dir", tmp_path / "m", "--mirror", f"{hostile}/huge/")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("gpunet: downloading train-images-idx3-ubyte.gz from 127.0.0.1")
    assert_one_line_error(type(run)(2, "", lines[-1]), "could not download", "offered")


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, hostile, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gpunet.io.fs.tempfile, "mkstemp", full)
    run = cli("data", "download", "--data-dir", tmp_path / "m", "--mirror", f"{hostile}/good/")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith("cannot write the download there (No space left on device); give --data-dir DIR or GPUNET_DATA=DIR")
    )
    assert not (tmp_path / "m").exists()
