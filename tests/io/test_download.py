"""Downloads from a loopback HTTP server: mirrors in order, checksums, nothing half-written."""

import gzip
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import MNIST, ROOT, assert_one_line_error, cli, notes_of, stop_with

import gpunet.io.download
import gpunet.io.fs
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
    fetched = download(folder, [f"{server}/missing/", f"{server}/good/"])
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
        download(folder, bases)
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
    fetched = download(folder, [f"{server}/good/"])
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


# Damaged input: hostile servers
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
        self.send_header("Content-Length", str(FILES[name].size))
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
    start = time.monotonic()
    with notes_of("gpunet.download") as notes, pytest.raises(DataError) as e:
        download(folder, bases)
    elapsed = time.monotonic() - start
    message = str(e.value)
    shorter = message.replace(str(folder), "")  # the folder's length is the user's
    assert "\n" not in message and len(shorter) < 480, message
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


def test_a_failed_download_says_nothing_before_its_error(tmp_path, hostile, quick):
    notes, _ = _fails(tmp_path / "mnist", [f"{hostile}/silent/", f"{hostile}/huge/"], "silent", "huge")
    assert notes == []  # the error names each mirror and why: a note before it would only repeat it


def test_a_file_that_landed_names_its_mirror_and_the_mirrors_that_failed_before(tmp_path, hostile, quick):
    with notes_of("gpunet.download") as notes:
        download(tmp_path / "mnist", [f"{hostile}/huge/", f"{hostile}/good/"])
    host = hostile.removeprefix("http://")
    offered = f"{host}/huge/: 1,000,000,000 bytes offered"
    assert notes[0].startswith(f"downloaded {FIRST} from {host}/good/ (mirror 2 of 2; {offered}"), notes
    assert len(notes) == len(FILES)


def test_a_file_larger_than_published_is_refused_even_when_a_mirror_is_honest_about_it(tmp_path, hostile, monkeypatch):
    small = {name: p._replace(size=10) for name, p in FILES.items()}
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
    fetched = download(folder, [f"{hostile}/good/"])
    assert len(fetched) == 4 and not stale.exists() and fresh.exists() and mine.exists()


SLOW = "import gpunet.io.download; gpunet.io.download.GRACE_SECONDS = 60.0; "


def _wait_for_a_temporary(folder):
    """Return once a download has written a temporary in folder (fail after 30 s)."""
    deadline = time.monotonic() + 30
    while not list(folder.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(folder.glob("*.part")), "the download never started"


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_download_removes_the_temporary(tmp_path, hostile, sig, status):
    folder = tmp_path / "mnist"
    code = SLOW + "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "data", "download", "--data-dir", str(folder), "--mirror", f"{hostile}/dribble/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_a_temporary(folder)
        err = stop_with(proc, sig, timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert not folder.exists() or list(folder.iterdir()) == []


def test_cli_download_failure_is_the_error_alone(tmp_path, hostile, monkeypatch, quick):
    run = cli("data", "download", "--data-dir", tmp_path / "m", "--mirror", f"{hostile}/huge/")
    assert run.returncode == 2
    ours = [line for line in run.stderr.splitlines() if line.startswith("gpunet:")]  # not the server's own noise
    assert_one_line_error(type(run)(2, "", ours[0]), "could not download", "offered")
    assert len(ours) == 1, ours


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


# Failed downloads: one summary line, nothing left behind
SIZE = FILES[FIRST].size


def _bomb() -> bytes:
    """A valid gzip file under the published size whose content is ~9 GB of zeros (gzip members repeated)."""
    member = gzip.compress(bytes(100 << 20), compresslevel=9)  # 100 MiB in ~100 kB
    return member * (SIZE // len(member))


class Failing(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bomb = b""

    def do_GET(self):
        mode = self.path.strip("/").split("/")[0]
        try:
            getattr(self, mode)()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, body: bytes, length: int | None = None, close: bool = False):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def stall(self):  # a byte every 0.2 s, for at most 10 s
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b"\0")
            self.wfile.flush()
            time.sleep(0.2)

    def short(self):  # says the published size, sends 1,000 bytes and hangs up
        self._send(bytes(1000), SIZE, close=True)
        self.close_connection = True

    def long(self):  # says 1 GB
        self._send(bytes(1 << 16), 10**9)

    def garbage(self):  # the published size, not the file
        self._send(bytes(SIZE))

    def redirect(self):  # to itself, for ever
        self.send_response(302)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def bomb_(self):
        self._send(Failing.bomb)

    def missing(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


WHY = {
    "stall": "stalled",
    "short": "",  # requests' own words for a body cut short
    "long": "1,000,000,000 bytes offered",
    "garbage": "checksum mismatch",
    "redirect": "redirect",
    "bomb_": "checksum mismatch",
    "missing": "HTTP 404",
}


class Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client hanging up is what the tests do
        pass


@pytest.fixture(scope="module")
def mirror():
    Failing.bomb = _bomb()
    httpd = Quiet(("127.0.0.1", 0), Failing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("mode", list(WHY))
@pytest.mark.parametrize("quiet", [False, True])
def test_a_failed_download_ends_with_its_one_line_summary(tmp_path, mirror, quick, mode, quiet):
    folder = tmp_path / "mnist"
    start = time.monotonic()
    quiet_flag = ["--quiet"] if quiet else []
    run = cli("data", "download", "--data-dir", folder, "--mirror", f"{mirror}/{mode}/", *quiet_flag)
    assert time.monotonic() - start < 30
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert lines[-1].startswith(f"gpunet: error: could not download {FIRST} (") and WHY[mode] in lines[-1], lines
    assert len(lines) == 1, lines  # quiet or not: the error names the mirror and why, nothing before repeats it
    assert run.stdout == ""
    assert not folder.exists() or list(folder.iterdir()) == []  # no .part, no lock, no folder made


def test_train_quiet_is_the_download_error_alone(tmp_path, mirror, quick):
    (tmp_path / "m").mkdir()  # an explicit --data-dir must exist; train fills it when it is empty
    run = cli("train", "--device", "cpu", "--data-dir", tmp_path / "m", "--mirror", f"{mirror}/missing/", "--quiet")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "HTTP 404" in run.stderr and list((tmp_path / "m").iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_stop_signal_mid_download_leaves_nothing_and_says_how_to_go_on(tmp_path, mirror, signum):
    folder = tmp_path / "mnist"
    code = "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["data", "download", "--data-dir", str(folder), "--mirror", f"{mirror}/stall/"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for_a_temporary(folder)
        err = stop_with(proc, signum, timeout=30)
    finally:
        proc.kill()
    assert err.strip().splitlines()[-1] == f"gpunet:   gpunet data download --data-dir {folder}"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_a_mirror_in_the_environment_that_is_not_a_url_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUNET_MNIST_MIRRORS", "http://127.0.0.1:1/ http://[::1")
    run = cli("data", "download", "--data-dir", tmp_path)
    assert_one_line_error(run, "$GPUNET_MNIST_MIRRORS: expected URLs like https://host/mnist/")
