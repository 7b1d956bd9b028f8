"""``gpunet sweep --scheduler ADDRESS``: chunks of networks on a Dask distributed cluster (``gpunet[dist]``).

Each chunk is one task; on CUDA it asks for the worker resource ``GPU=1`` (``dask worker ADDRESS --resources
GPU=1``, one per GPU). Every worker reads the data itself, checks it decodes to the sweep's data
(:mod:`gpunet.io.identity`) and keeps it pinned between tasks.
"""

from __future__ import annotations

import threading

from ..backend import get_backend
from ..errors import ConfigError, DataError
from ..io import identity, peers
from .stacks import pin_for, run_chunk

CONNECT_SECONDS = 3  # a module constant, so tests can shrink it

_lock = threading.Lock()
_workers: dict = {}  # (source, device) -> (backend, host data, its checksums, pinned data, kernels), per process


def connect(address: str):
    """A client of the scheduler at ``address``, or one line saying why not, within CONNECT_SECONDS."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'gpunet[dist]'") from None
    return peers.dask_client(address, CONNECT_SECONDS)


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
    return client.submit(
        run_on_worker, members, epochs, eval, device, source, checksums, kernel, resources=resources, pure=False
    )


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
