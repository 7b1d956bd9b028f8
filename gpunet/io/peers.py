"""The other programs gpunet talks to, each failure an answer rather than an OSError: git (for a run's manifest)
and a Dask scheduler (for a distributed sweep)."""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import subprocess
import sys
import time

from ..errors import ConfigError, one_line


def git(cwd, *args: str) -> str | None:
    """What ``git ARGS`` prints in ``cwd``, stripped; None when git is missing, fails or takes over 10 s.
    No GIT_* variable of the caller's (a GIT_DIR from elsewhere) reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def dask_client(address: str, timeout: float):
    """Returns a client of the Dask scheduler at ``address``, within ``timeout``; else ConfigError, one line why.

    The client's own timeout bounds the TCP connection only: a peer that accepts and never speaks (or an
    HTTP server) would hold the handshake forever. So the address is first asked who it is, the whole
    exchange bounded; only a Dask scheduler that answers gets a client."""
    from distributed import Client
    from distributed.comm.addressing import parse_address

    try:
        if parse_address(address)[0] != "inproc":  # in this process: nothing foreign can be listening there
            _identify(address, timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        why = f"no Dask scheduler answered there within {timeout:g} s" if isinstance(e, TimeoutError) else one_line(e)
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r} ({why}); start one with `dask scheduler` "
            "and give its address, e.g. tcp://host:8786"
        ) from None
    try:
        with _dask_silenced():
            return Client(address, timeout=timeout, set_as_default=False)
    except Exception as e:  # noqa: BLE001 - a peer that answered as a scheduler, then sent what it liked
        raise ConfigError(
            f"the peer at {address!r} answered as a Dask scheduler, then not as one ({one_line(e)}); "
            "give the address of a Dask scheduler you trust"
        ) from None


NO_WORKER_SECONDS = 60  # a cluster may lose its workers for a while (restarts); a module constant, for tests
CHECK_SECONDS = 2


def dask_results(client, futures, address: str):
    """Yields the result of each of ``futures`` as it completes (a task's own error raised as it is); ConfigError,
    one line, when the scheduler at ``address`` stops answering or has had no worker for NO_WORKER_SECONDS."""
    import asyncio
    from concurrent.futures import CancelledError

    pending, alone_since, checked = list(futures), None, time.monotonic()
    lost = f"the Dask scheduler at {address!r} stopped answering"
    try:
        with _dask_silenced():
            while pending:
                done = [future for future in pending if future.done()]  # as the client hears from the scheduler
                pending = [future for future in pending if not future.done()]
                got = False
                for k, future in enumerate(done):
                    try:
                        result = future.result(timeout=CHECK_SECONDS)
                    except TimeoutError:  # its result was on a worker that left: computed again, by another
                        pending += done[k:]
                        break
                    got = True
                    yield result
                if got:
                    alone_since = None
                elif time.monotonic() - checked > CHECK_SECONDS:
                    checked = time.monotonic()
                    if client.scheduler_info()["workers"]:
                        alone_since = None
                    elif alone_since is None:
                        alone_since = checked
                    elif checked - alone_since > NO_WORKER_SECONDS:
                        raise ConfigError(
                            f"no Dask worker has been connected to {address!r} for {NO_WORKER_SECONDS} s; start "
                            f"one with `dask worker {address}`, then continue the sweep with --resume"
                        )
                time.sleep(0.05)
    except (OSError, CancelledError, asyncio.CancelledError) as e:  # the scheduler killed, its host gone, ...
        raise ConfigError(f"{lost} ({one_line(e)}); once it runs again, continue the sweep with --resume") from None
    except TimeoutError:  # a call to the scheduler that got no answer
        raise ConfigError(f"{lost} (no answer); once it runs again, continue the sweep with --resume") from None


def close_client(client) -> None:
    """Closes ``client``, within seconds and without a word, whether or not its scheduler still answers."""
    with _dask_silenced(), contextlib.suppress(Exception):
        client.close(timeout=CHECK_SECONDS)


@contextlib.contextmanager
def _dask_silenced():
    """distributed's own log records held back (a CRITICAL "failed to deserialize" with its traceback, a lost
    connection): what went wrong is said in gpunet's one line."""
    names = [name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] in ("distributed", "tornado")]
    loggers = [logging.getLogger(name) for name in ("distributed", *names)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


REPLY_LIMIT = 1 << 20  # bytes: a scheduler's identity is a few hundred per worker


def _identify(address: str, timeout: float) -> None:
    """None once the peer at ``address`` has answered as a Dask scheduler within ``timeout``; else TimeoutError
    (no answer) or ValueError (an answer, but not a scheduler's).

    Spoken by hand, in Dask's framing (a length, a frame count, the frames' lengths, the frames) with msgpack
    only: Dask's own reader unpickles what a peer sends (``__Pickled__``) even when asked not to deserialize,
    and this peer is not trusted yet."""
    import asyncio

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    host, port = parse_host_port(location)
    tls = None
    if scheme == "tls":  # with the certificates of Dask's configuration, as the client will use
        from distributed.security import Security

        tls = Security().get_connection_args("client").get("ssl_context")
        if tls is None:
            raise ValueError("tls:// needs Dask's TLS settings (distributed.comm.tls in the Dask configuration)")
    elif scheme != "tcp":
        raise ValueError(f"{scheme}:// is not supported; give a tcp:// or tls:// address")

    async def identity():
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=REPLY_LIMIT)
        try:
            handshake = {"compression": None, "python": tuple(sys.version_info[:3]), "pickle-protocol": 5}
            for message in (handshake, {"op": "identity", "reply": True}):
                writer.write(_frame(message))
                await writer.drain()
                answer = await _read(reader)
            return answer
        finally:
            writer.close()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (OSError, asyncio.TimeoutError) as e:
        raise TimeoutError() from e
    except Exception as e:  # noqa: BLE001 - whatever a foreign peer's bytes make of the protocol
        raise ValueError(f"not a Dask scheduler ({one_line(e)})") from None
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        raise ValueError("not a Dask scheduler (it answered, but not as one)")


def _frame(message: dict) -> bytes:
    """Returns ``message`` as Dask writes a message of one msgpack frame."""
    import msgpack

    body = msgpack.dumps(message, use_bin_type=True)
    packed = struct.pack("<QQ", 1, len(body)) + body
    return struct.pack("<Q", len(packed)) + packed


async def _read(reader):
    """Returns the next message's first frame, decoded as msgpack and nothing else; ValueError for a message
    over ``REPLY_LIMIT`` bytes or not framed as Dask frames it."""
    import msgpack

    (size,) = struct.unpack("<Q", await reader.readexactly(8))
    if not 16 <= size <= REPLY_LIMIT:
        raise ValueError(f"a message of {size:,} bytes")
    packed = await reader.readexactly(size)
    (count,) = struct.unpack_from("<Q", packed)
    if not 1 <= count <= (size - 8) // 8:
        raise ValueError(f"{count:,} frames")
    lengths = struct.unpack_from(f"<{count}Q", packed, 8)
    start = 8 + 8 * count
    if start + sum(lengths) != size:
        raise ValueError("frames that are not its message")
    first = lengths[0]
    frame = packed[start : start + first]
    return msgpack.loads(frame, object_hook=_plain, raw=False, strict_map_key=False, use_list=False)


def _plain(value: dict) -> dict:
    """Returns ``value``, a msgpack map; ValueError for Dask's marks of a pickled or serialized object."""
    if "__Pickled__" in value or "__Serialized__" in value:
        raise ValueError("it sent a pickle, which gpunet reads from no peer before it is known")
    return value
