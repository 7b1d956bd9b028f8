"""A mirror's redirects are followed only over http(s), a few times, and never to a less public address (the
cloud's metadata service, the LAN) than the mirror's own (io/download.py). Every connection these tests make
is checked to stay on loopback: a redirect that the policy failed to refuse would be an error, not a packet."""

import http.server
import socket
import threading

import pytest

from gpunet.io import download

FILE = "t10k-labels-idx1-ubyte.gz"


@pytest.fixture
def loopback_only(monkeypatch):
    """Returns the addresses connections were attempted to; any outside loopback raises instead of connecting."""
    tried = []
    connect = socket.socket.connect

    def guarded(self, address):
        tried.append(address[0])
        if address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a connection to {address[0]} was attempted")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return tried


def serve(location: str | None, body: bytes = b""):
    """Returns (the base URL, the server) of a loopback server answering every GET with a 302 to ``location``,
    or with ``body`` where ``location`` is None."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if location is None else 302)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "redirected to a link-local address (169.254.169.254)"),
        ("http://[::ffff:169.254.169.254]/", "redirected to a link-local address"),
        ("http://10.1.2.3/mnist/", "redirected to a private address (10.1.2.3)"),
        ("http://192.168.0.1/mnist/", "redirected to a private address"),
        ("file:///etc/passwd", "redirected to a file address, refused"),
        ("ftp://127.0.0.1/mnist/", "redirected to a ftp address, refused"),
    ],
)
def test_a_redirect_to_a_less_public_address_is_refused_before_connecting(tmp_path, loopback_only, location, why):
    base, server = serve(location)
    try:
        with pytest.raises(download._Failed, match=why.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            download._fetch(base + FILE, tmp_path, FILE, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert set(loopback_only) == {"127.0.0.1"}
    assert list(tmp_path.iterdir()) == []  # no temporary left


def test_a_loopback_mirror_may_redirect_to_loopback(tmp_path, loopback_only):
    genuine = (download.Path(__file__).parents[2] / "data" / FILE).read_bytes()
    target, file_server = serve(None, genuine)
    base, server = serve(target + FILE)
    try:
        assert download._fetch(base + FILE, tmp_path, FILE, progress=False) == tmp_path / FILE
    finally:
        for s in (server, file_server):
            s.shutdown()
            s.server_close()
    assert (tmp_path / FILE).read_bytes() == genuine


def test_redirects_are_few(tmp_path, loopback_only):
    base, server = serve("/again")  # to itself, for ever
    try:
        with pytest.raises(download._Failed, match=f"Exceeded {download.MAX_REDIRECTS} redirects"):
            download._fetch(base + FILE, tmp_path, FILE, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert len(loopback_only) <= download.MAX_REDIRECTS + 1
