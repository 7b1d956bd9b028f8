"""The programs gpunet talks to: a Dask scheduler is asked who it is without trusting its bytes (io/peers.py)."""

import contextlib
import pickle
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
msgpack = pytest.importorskip("msgpack")

from gpunet.errors import ConfigError  # noqa: E402
from gpunet.io import peers  # noqa: E402


def dask_message(*frames: bytes) -> bytes:
    """Returns ``frames`` as Dask's TCP comm writes one message."""
    packed = struct.pack(f"<Q{len(frames)}Q", len(frames), *map(len, frames)) + b"".join(frames)
    return struct.pack("<Q", len(packed)) + packed


class Touch:
    """Unpickled, it creates the file ``marker``: the proof that a peer's pickle ran code here."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def fake_scheduler():
    """Returns a function that starts a peer on 127.0.0.1 answering every message with the next of ``replies``
    (bytes), and returns its tcp:// address."""
    return lambda *replies: _serving(replies)


HANDSHAKE = dask_message(msgpack.dumps({"compression": None, "python": (3, 11, 0), "pickle-protocol": 5}))
SCHEDULER = dask_message(msgpack.dumps({"type": "Scheduler", "id": "Scheduler-1", "workers": {}}))


def test_a_real_scheduler_answers_the_probe():
    options = {"processes": False, "dashboard_address": None, "protocol": "tcp", "host": "127.0.0.1"}
    with distributed.LocalCluster(n_workers=0, **options) as cluster:
        peers._identify(cluster.scheduler_address, 10)  # no error: it answered as a scheduler


def test_the_probe_takes_the_framing_it_writes(fake_scheduler):
    peers._identify(fake_scheduler(HANDSHAKE, SCHEDULER), 5)


# ---- hostile peers -------------------------------------------------------------------------------------------


def test_a_pickle_in_the_handshake_runs_no_code(fake_scheduler, tmp_path):
    marker = tmp_path / "ran"
    body = pickle.dumps(Touch(marker))
    header = msgpack.dumps({"num-sub-frames": 0, "pickled-obj": body})
    reply = dask_message(msgpack.dumps({"compression": None, "op": {"__Pickled__": 1}}), header)
    with pytest.raises(ConfigError, match="not a Dask scheduler"):
        peers.dask_client(fake_scheduler(reply), 5)
    assert not marker.exists()


def test_a_pickle_in_the_identity_runs_no_code(fake_scheduler, tmp_path):
    marker = tmp_path / "ran"
    header = msgpack.dumps({"num-sub-frames": 0, "pickled-obj": pickle.dumps(Touch(marker))})
    reply = dask_message(msgpack.dumps({"type": {"__Pickled__": 1}}), header)
    with pytest.raises(ConfigError, match="not a Dask scheduler"):
        peers.dask_client(fake_scheduler(HANDSHAKE, reply), 5)
    assert not marker.exists()


@pytest.mark.parametrize(
    "reply",
    [
        b"\x92" * 200_000 + b"\xc0" * 200_000,  # 200,000 nested arrays
        msgpack.dumps("x" * 100),
        b"\xff" * 40,
    ],
    ids=["deep", "a-string", "garbage"],
)
def test_a_reply_that_is_no_scheduler_is_one_error(fake_scheduler, reply):
    with pytest.raises(ConfigError, match="not a Dask scheduler"):
        peers.dask_client(fake_scheduler(HANDSHAKE, dask_message(reply)), 5)


@pytest.mark.parametrize(
    "reply",
    [
        struct.pack("<Q", 1 << 40),  # a terabyte announced
        struct.pack("<QQQ", 16, 1, 1 << 40),  # a frame longer than its message
        struct.pack("<QQ", 8, 1 << 60),  # more frames than bytes
    ],
    ids=["huge", "long-frame", "many-frames"],
)
def test_a_message_not_framed_as_dask_frames_it_is_refused_before_it_is_read(fake_scheduler, reply):
    with pytest.raises(ConfigError, match="not a Dask scheduler"):
        peers.dask_client(fake_scheduler(reply + b"\0" * 64), 5)


def test_other_schemes_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="ws:// is not supported"):
        peers.dask_client("ws://127.0.0.1:1", 1)


# ---- a peer that passes the probe, then not ------------------------------------------------------------------


def _serving(*connections):
    """A peer on 127.0.0.1 answering the k-th connection's messages with the k-th tuple of ``connections``;
    returns its tcp:// address."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        with server:
            for replies in connections:
                connection, _ = server.accept()
                with connection, contextlib.suppress(OSError, struct.error):  # the client may hang up first
                    for reply in replies:
                        size = struct.unpack("<Q", connection.recv(8, socket.MSG_WAITALL))[0]
                        connection.recv(size, socket.MSG_WAITALL)
                        connection.sendall(reply)
                    connection.recv(1)

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack("<Q", 1 << 40) + b"\0" * 64,  # a terabyte announced: distributed's MemoryError
        struct.pack("<QQQ", 16, 1, 1 << 40) + b"\0" * 64,  # a frame longer than its message: its AssertionError
        dask_message(b"\x91" * 200_000 + b"\xc0"),  # 200,000 nested arrays: its CRITICAL log and traceback
    ],
    ids=["huge", "long-frame", "deep"],
)
def test_a_peer_that_answers_the_probe_then_garbage_is_one_line_and_silent(garbage, capfd):
    address = _serving((HANDSHAKE, SCHEDULER), (HANDSHAKE, garbage))
    with pytest.raises(ConfigError, match="answered as a Dask scheduler, then not as one") as e:
        peers.dask_client(address, 5)
    assert "\n" not in str(e.value)
    assert capfd.readouterr().err == ""  # nothing of distributed's own on stderr


class _Lost:
    """A future whose scheduler went away: what distributed's raise when the connection is lost."""

    def __init__(self, error):
        self.error = error

    def done(self):
        return True

    def result(self, timeout=None):
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        distributed.comm.CommClosedError("in <TCP (closed) ...>: Stream is closed"),
        distributed.client.FutureCancelledError("f-1", reason="scheduler-connection-lost"),
    ],
    ids=["comm-closed", "cancelled"],
)
def test_a_scheduler_lost_mid_sweep_is_one_line(error):
    with pytest.raises(ConfigError, match="stopped answering") as e:
        list(peers.dask_results(None, [_Lost(error)], "tcp://127.0.0.1:1"))
    assert "--resume" in str(e.value)


def test_a_cluster_without_workers_is_one_line_within_the_bound(monkeypatch):
    monkeypatch.setattr(peers, "NO_WORKER_SECONDS", 1)
    monkeypatch.setattr(peers, "CHECK_SECONDS", 0.2)
    options = {"processes": False, "dashboard_address": None, "protocol": "tcp", "host": "127.0.0.1"}
    with distributed.LocalCluster(n_workers=0, **options) as cluster:
        client = peers.dask_client(cluster.scheduler_address, 10)
        try:
            futures = [client.submit(sum, [1, 2], pure=False)]  # no worker to run it: it waits
            with pytest.raises(ConfigError, match="no Dask worker has been connected"):
                list(peers.dask_results(client, futures, cluster.scheduler_address))
        finally:
            peers.close_client(client)


class _Gone:
    """A future computed on a worker that then left: done, but its result never comes (distributed computes it
    again, once a worker is there)."""

    def done(self):
        return True

    def result(self, timeout=None):
        time.sleep(timeout)
        raise TimeoutError()


class _Alone:
    def scheduler_info(self):
        return {"workers": {}}


def test_results_lost_with_the_last_worker_are_no_endless_wait(monkeypatch):
    monkeypatch.setattr(peers, "NO_WORKER_SECONDS", 0.5)
    monkeypatch.setattr(peers, "CHECK_SECONDS", 0.1)
    start = time.monotonic()
    with pytest.raises(ConfigError, match="no Dask worker has been connected"):
        list(peers.dask_results(_Alone(), [_Gone() for _ in range(100)], "tcp://127.0.0.1:1"))
    assert time.monotonic() - start < 30  # not 100 results waited for in turn
