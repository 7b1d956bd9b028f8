"""``gpunet sweep --scheduler ADDRESS``: chunks of networks on a Dask distributed cluster (``gpunet[dist]``).

Each chunk is one task. On CUDA a task asks for the worker resource ``GPU=1``, so a worker started with
``dask worker ADDRESS --resources GPU=1`` (one per GPU) runs one chunk at a time. Every worker reads (or
downloads) the data itself, checks it is the data the sweep was started on (the same decoded images and
labels, :mod:`gpunet.io.identity`, however the files were compressed or wherever they came from), and keeps
it pinned on its device between tasks.
"""

from __future__ import annotations

import threading

from ..backend import get_backend
from ..errors import ConfigError, DataError, one_line
from ..io import identity
from .stacks import pin_for, run_chunk

CONNECT_SECONDS = 3  # a module constant, so tests can shrink it

_lock = threading.Lock()
_workers: dict = {}  # (source, device) -> (backend, host data, its checksums, pinned data, kernels), per process


def connect(address: str):
    """A client of the scheduler at ``address``, or one line saying why not, within CONNECT_SECONDS.

    The client's own timeout bounds the TCP connection only: a peer that accepts and never speaks (or an
    HTTP server) would hold the handshake forever. So the address is first asked who it is, the whole
    exchange bounded; only a Dask scheduler that answers gets a client."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'gpunet[dist]'") from None
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "inproc":  # in this process: nothing foreign can be listening there
            parse_host_port(location)  # a port is required: checked here, not by a client that hangs on it
            _identify(address)
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        why = f"no Dask scheduler answered there within {CONNECT_SECONDS:g} s" if isinstance(e, TimeoutError) else (
            one_line(e))  # fmt: skip
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r} ({why}); start one with `dask scheduler` "
            "and give its address, e.g. tcp://host:8786"
        ) from None


def _identify(address: str) -> None:
    """Connect, shake hands and ask ``identity``, all within CONNECT_SECONDS; TimeoutError if no scheduler answers."""
    import asyncio

    from distributed.comm import connect as dask_connect

    async def identity():
        comm = await dask_connect(address, timeout=CONNECT_SECONDS)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded():
        return await asyncio.wait_for(identity(), CONNECT_SECONDS)

    try:
        answer = asyncio.run(bounded())
    except (OSError, asyncio.TimeoutError) as e:  # a refused connection is retried until the timeout too
        raise TimeoutError() from e
    except Exception as e:  # noqa: BLE001 - whatever a foreign peer's bytes make of the protocol
        raise ValueError(f"not a Dask scheduler ({one_line(e)})") from None
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        raise ValueError("not a Dask scheduler (it answered, but not as one)")


def check_gpus(client, device: str) -> None:
    """On CUDA, chunks wait for a worker with the resource GPU: say so now if the cluster has none."""
    workers = client.scheduler_info()["workers"].values()
    if device.startswith("cuda") and not any(w.get("resources", {}).get("GPU") for w in workers):
        raise ConfigError(
            f"--device {device}: no worker of the cluster has a GPU resource; start one per GPU with "
            "`dask worker ADDRESS --resources GPU=1` (or `dask cuda worker ADDRESS --resources GPU=1`)"
        )


def submit(client, members, epochs: int, eval: str, device: str, source, checksums: dict, kernel=None):
    resources = {"GPU": 1} if device.startswith("cuda") else None
    return client.submit(run_on_worker, members, epochs, eval, device, source, checksums, kernel, resources=resources,
                         pure=False)  # fmt: skip


def run_on_worker(members, epochs, eval, device, source, checksums, kernel=None):
    """One chunk, run where the worker is: its own data, checked, pinned once per worker, dtype and outputs."""
    with _lock:
        key = (source, device)
        if key not in _workers:
            host = source.load()
            _workers[key] = (get_backend(device), host, identity.checksums(host), {}, {})
        backend, host, read, pinned, kernels = _workers[key]
        if not identity.same_data(read, checksums):  # each task: a later sweep may have started on other data
            del _workers[key]  # read again for the next task: the files may be mended by then
            raise DataError(f"the worker's data ({host.source}) differs from the data the sweep started on")
        data = pin_for(pinned, host, backend, members[0][0])
    return run_chunk(backend, data, members, epochs, eval, kernels, kernel_name=kernel)
