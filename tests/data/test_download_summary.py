"""A failed download ends with its one-line summary, the last line; with --quiet that line alone. Each way a
mirror on 127.0.0.1 can fail: a stall, a wrong length (short or long), wrong content, a redirect loop, a
gzip bomb, a 404; and a stop signal mid-download. Exit 2 (or 128 + the signal), nothing left behind."""

import gzip
import http.server
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import ROOT, cli

from gpunet.io.download import MNIST

FIRST = "train-images-idx3-ubyte.gz"  # the first file a download fetches
SIZE = MNIST[FIRST].size


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
    assert len(lines) == 1 if quiet else lines[0].startswith(f"gpunet: downloading {FIRST} from 127.0.0.1"), lines
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
        deadline = time.monotonic() + 30
        while not list(folder.glob("*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(folder.glob("*.part")), "the download never started"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"gpunet:   gpunet data download --data-dir {folder}"
    assert not folder.exists() or list(folder.iterdir()) == []
