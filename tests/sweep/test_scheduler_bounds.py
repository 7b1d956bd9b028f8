"""``--scheduler`` at something that is not a Dask scheduler: one line within seconds, not a hang."""

import http.server
import socket
import threading
import time

import pytest
from helpers import assert_one_line_error, cli

pytest.importorskip("distributed")


@pytest.fixture
def silent_peer():
    """A TCP peer on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    server.close()


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("peer", ["silent_peer", "http_server"])
def test_an_address_where_no_scheduler_answers_is_one_line_within_seconds(request, peer, monkeypatch):
    import gpunet.sweep.dist

    monkeypatch.setattr(gpunet.sweep.dist, "CONNECT_SECONDS", 1)
    address = request.getfixturevalue(peer)
    start = time.monotonic()
    run = cli("sweep", "--seeds", "1", "--epochs", "1", "--scheduler", address)
    assert time.monotonic() - start < 20
    assert_one_line_error(run, "cannot reach the Dask scheduler", address)
    assert "no Dask scheduler answered there within 1 s" in run.stderr or "not a Dask scheduler" in run.stderr
