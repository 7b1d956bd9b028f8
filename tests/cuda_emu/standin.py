"""The CuPy stand-in (cupy_on_cpu) as a whole GPU, for the CUDA kernel's check in a child process (tests only).

In the check's child, ``child/sitecustomize.py`` makes ``get_backend("cuda:N")`` call :func:`backend`, which installs
this CuPy and returns a backend named cuda:0 whose arrays are NumPy's. The test sets, in the child's environment:
GPUNET_EMU_HARNESS (the harness binary to launch kernels with), GPUNET_EMU_THREADS (threads per block) and
GPUNET_EMU_ABORT (abort at once, as a crashing driver would).
"""

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
    module.cuda.nvrtc = types.SimpleNamespace(getVersion=lambda: (13, 5))
    module.get_default_memory_pool = lambda: types.SimpleNamespace(free_bytes=lambda: 0)
    return module


def gpu_backend():
    """A backend called cuda:0 whose arrays are NumPy's, copied "to the device" as the stand-in's device arrays."""
    from gpunet.backend import Backend, get_backend

    class Emulated(Backend):
        def asarray(self, host, dtype=None):
            return super().asarray(host, dtype).view(cupy_on_cpu.DeviceArray)

    gpu = {"device": None, "name": "cuda:0", "description": "Emulated GPU", "library": "cupy_on_cpu"}
    return Emulated(**{**vars(get_backend("cpu")), **gpu})


def backend():
    """Returns the emulated GPU's backend, once the stand-in is ``cupy`` and the emulation's block size is set."""
    if os.environ.get("GPUNET_EMU_ABORT"):
        os.abort()
    from gpunet.kernels.cuda import launcher as cuda

    sys.modules["cupy"] = cupy(os.environ["GPUNET_EMU_HARNESS"], tempfile.mkdtemp(prefix="cuda-emu-"), os.environ)
    cuda.THREADS = int(os.environ.get("GPUNET_EMU_THREADS", "32"))
    return gpu_backend()
