"""The CuPy stand-in (cupy_on_cpu) as a whole GPU, for the CUDA kernel's check in a child process (tests only).

In the check's child, ``child/sitecustomize.py`` makes ``get_backend("cuda:N")`` call :func:`backend`, which installs
this CuPy and returns a backend named cuda:0 whose arrays are NumPy's. The test sets, in the child's environment:
GPUNET_EMU_HARNESS (the harness binary to launch kernels with), GPUNET_EMU_THREADS (threads per block) and
GPUNET_EMU_ABORT (abort at once, as a crashing driver would).
"""

import dataclasses
import os
import sys
import tempfile
import types
from pathlib import Path

from cuda_emu import cupy_on_cpu

GPU = {"name": b"Emulated GPU", "major": 9, "minor": 0}  # what getDeviceProperties adds to cupy_on_cpu's


def cupy(harness, folder, env=None) -> types.ModuleType:
    """cupy_on_cpu's module, with what the rest of gpunet asks of CuPy on a GPU: its identity, streams, memory."""
    module = cupy_on_cpu.module(Path(harness), Path(folder), env=env)
    module.__version__ = "14.2.0-emulated"
    runtime = module.cuda.runtime
    properties = runtime.getDeviceProperties(0)
    runtime.getDeviceProperties = lambda i: {**properties, **GPU}
    runtime.driverGetVersion = lambda: 13000
    runtime.runtimeGetVersion = lambda: 13000
    runtime.memGetInfo = lambda: (2**34, 2**34)
    module.get_default_memory_pool = lambda: types.SimpleNamespace(free_bytes=lambda: 0)
    module.cuda.get_current_stream = lambda: types.SimpleNamespace(synchronize=lambda: None)
    return module


def gpu_backend():
    """A backend called cuda:0 whose arrays are NumPy's (the stand-in's kernels take them as device arrays)."""
    from gpunet.backend import get_backend

    return dataclasses.replace(
        get_backend("cpu"), device=None, name="cuda:0", description="Emulated GPU", library="cupy_on_cpu"
    )


def backend():
    """Returns the emulated GPU's backend, once the stand-in is ``cupy`` and the emulation's block size is set."""
    if os.environ.get("GPUNET_EMU_ABORT"):
        os.abort()
    from gpunet.kernels.cuda import launcher as cuda

    sys.modules["cupy"] = cupy(os.environ["GPUNET_EMU_HARNESS"], tempfile.mkdtemp(prefix="cuda-emu-"), os.environ)
    cuda.THREADS = int(os.environ.get("GPUNET_EMU_THREADS", "32"))
    return gpu_backend()
