"""``gpunet sweep --scheduler``: chunks of networks on a Dask cluster give the table of the local run, and an address
where no Dask scheduler answers is one line within seconds, not a hang."""

import http.server
import re
import socket
import threading
import time

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c


def test_a_cluster_sweep_prints_the_table_of_the_local_one(tmp_path, cluster, mnist_like):
    args = ["sweep", "--seeds", "1-5", "--eta", "3,1", "--epochs", "2", "--chunk", "3", "--sizes", "64,10,10"]
    args += ["--data-dir", mnist_like("small"), "--validation-size", "50", "--device", "cpu"]
    local = cli(*args, "--out", tmp_path / "local")
    remote = cli(*args, "--out", tmp_path / "remote", "--scheduler", cluster.scheduler_address)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    parts = [run.stdout.split("\n\n") for run in (local, remote)]  # header and a line per network, then tables
    lines = [sorted(re.sub(r" \([\d.]+ s\)", "", p[0]).splitlines()[2:]) for p in parts]
    assert lines[0] == lines[1] and len(lines[0]) == 10
    assert parts[0][1:] == parts[1][1:] and len(parts[0]) == 3
    assert (tmp_path / "remote" / "networks.csv").read_text().count("\n") == 11


def test_a_worker_with_other_data_refuses_the_chunk(tmp_path, cluster):
    from gpunet.sweep import DataSource
    from gpunet.sweep.dist import connect, submit
    from gpunet.sweep.grid import Config

    write_mnist_like(tmp_path / "data", 60, 20, rows=4, cols=4, seed=1)
    client = connect(cluster.scheduler_address)
    try:
        members = [(Config((16, 10), 3.0, 10, "float32"), 1)]
        future = submit(
            client,
            members,
            1,
            "test",
            "cpu",
            DataSource(str(tmp_path / "data"), validation_size=10),
            {"train-images-idx3-ubyte.gz": "0" * 64},
        )
        with pytest.raises(Exception, match="differs from the data"):
            future.result()
    finally:
        client.close()


def test_cuda_on_a_cluster_without_gpu_workers_is_one_line(tmp_path, cluster):
    from helpers import assert_one_line_error

    run = cli("sweep", "--seeds", "1", "--device", "cuda", "--scheduler", cluster.scheduler_address)
    assert_one_line_error(run, "no worker of the cluster has a GPU resource", "--resources GPU=1")


# ---- --scheduler at something that is not a Dask scheduler ---------------------------------------------------


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
