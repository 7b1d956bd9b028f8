"""The backend seam: a device string in, an array namespace ``xp`` and a device out.

This is the only module that knows NumPy from CuPy. Everything else calls
functions of the Python array API standard on ``backend.xp`` and moves host data
with :meth:`Backend.asarray` / :meth:`Backend.to_host`.
"""

from __future__ import annotations

import glob
import os
import platform
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, GpunetError, one_line

CUDA_HINT = (
    "install CuPy with `pip install 'gpunet[cuda12]'` (or 'gpunet[cuda13]'), or run the gpunet CUDA Docker image"
)


DEVICE_RE = re.compile(r"cpu|auto|cuda(?::(\d+))?")


class BackendError(GpunetError):
    """The requested device cannot be used."""


class CudaUnusable(BackendError):
    """CUDA was asked for and cannot run here: ``reason`` says why and how to fix it."""

    def __init__(self, reason: str, device: str = "CUDA"):
        super().__init__(f"{device} requested but {reason}")
        self.reason, self.device = reason, device

    def __reduce__(self):  # pickled as made (a Dask worker's error reaches the client whole)
        return type(self), (self.reason, self.device)


@dataclass(frozen=True)
class Backend:
    """An array namespace and the device its arrays live on."""

    xp: Any = field(repr=False)  # the array API namespace
    device: Any = field(repr=False)  # the device object passed as ``device=`` to creation functions
    name: str  # "cpu", "cuda:0", ...
    description: str  # human-readable device name
    library: str  # "numpy 2.1.0", "cupy 14.0.0", ...
    note: str = ""  # why `auto` chose the CPU on a machine with a GPU, if it did

    def asarray(self, host, dtype=None):
        """Copy a host (NumPy) array onto the device: the one host->device door."""
        return self.xp.asarray(host, dtype=dtype, device=self.device)

    def to_host(self, a) -> np.ndarray:
        """Copy a device array back into a NumPy array."""
        return a.get() if hasattr(a, "get") else np.asarray(np.from_dlpack(a))  # CuPy's arrays have .get()

    def dtype(self, name: str):
        return getattr(self.xp, name)

    def check_memory(self, nbytes: int, what: str, host: int = 0) -> None:
        """Refuse, in one line, ``nbytes`` on this device plus ``host`` bytes on the host, when not free."""
        from .io.fs import check_memory, human_bytes

        if not self.name.startswith("cuda"):
            check_memory(nbytes + host, what)
            return
        check_memory(host, what)
        import cupy

        free = cupy.cuda.runtime.memGetInfo()[0] + cupy.get_default_memory_pool().free_bytes()
        if nbytes > free:
            raise BackendError(f"{what} needs {human_bytes(nbytes)} on {self.name}, only {human_bytes(free)} free")

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU), before reading clocks."""
        if self.name.startswith("cuda"):
            import cupy

            cupy.cuda.get_current_stream().synchronize()


def get_backend(spec: str = "auto") -> Backend:
    """Returns the :class:`Backend` that ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` names."""
    if not isinstance(spec, str):
        raise ConfigError(f"device must be cpu, cuda, cuda:N or auto (a string), got {spec!r}")
    spec = spec.strip().lower()
    if spec == "cpu":
        return _cpu()
    if spec == "auto":
        try:
            return _cuda(0)
        except BackendError:  # quietly the CPU, unless a GPU is there and the user may want to know
            note = "a GPU is here but CUDA is not usable; using the CPU (`gpunet info` says why)"
            return _cpu(note=note if gpu_present() else "")
    m = DEVICE_RE.fullmatch(spec)
    if m is None:
        raise BackendError(f"unknown device {spec!r}: use cpu, cuda, cuda:N or auto")
    return _cuda(int(m.group(1) or 0))


def gpu_present() -> bool:
    """Whether the NVIDIA driver shows a GPU, asked without CuPy (Linux: /proc/driver/nvidia, /dev/nvidia0)."""
    return bool(glob.glob("/proc/driver/nvidia/gpus/*")) or os.path.exists("/dev/nvidia0")


def _cpu(note: str = "") -> Backend:
    import array_api_compat.numpy as xp

    return Backend(
        xp=xp, device="cpu", name="cpu", description=_cpu_name(), library=f"numpy {np.__version__}", note=note
    )


def _cpu_name() -> str:
    from .io.fs import cpu_model

    return cpu_model() or platform.processor() or platform.machine() or "CPU"


def _cuda(index: int) -> Backend:
    try:
        import cupy
    except ImportError as e:
        if getattr(e, "name", None) == "cupy":
            raise CudaUnusable(f"CuPy is not installed; {CUDA_HINT}") from None
        raise CudaUnusable(f"CuPy failed to import ({one_line(e)}); {CUDA_HINT}") from None
    # CuPy imports fine without a driver: ask it, then run a tiny kernel to be sure.
    try:
        available = cupy.is_available()
    except Exception:  # noqa: BLE001 - any failure here means "not usable"
        available = False
    if not available:
        raise CudaUnusable(
            "no CUDA driver or GPU was found (cupy.is_available() is False); "
            "install the NVIDIA driver (and, in Docker, the NVIDIA Container Toolkit and run with --gpus all)"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        raise CudaUnusable(f"it cannot count CUDA devices ({one_line(e)}); {CUDA_HINT}") from None
    if index >= count:
        raise CudaUnusable(f"only {count} CUDA device(s) found; use cuda:0..cuda:{count - 1}", f"cuda:{index}")
    try:
        cupy.cuda.Device(index).use()  # later kernels launch on this device
        x = cupy.exp(cupy.arange(4, dtype=cupy.float32))
        float((x @ x).get())
        name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
        runtime, driver = cupy.cuda.runtime.runtimeGetVersion(), cupy.cuda.runtime.driverGetVersion()
    except Exception as e:  # noqa: BLE001 - e.g. NVRTC or cuBLAS missing
        raise CudaUnusable(
            f"a CUDA library is missing or broken ({one_line(e)}), though CuPy found a GPU; {CUDA_HINT}"
        ) from None
    import array_api_compat.cupy as xp

    description = name.decode() if isinstance(name, bytes) else str(name)
    library = f"cupy {cupy.__version__}, CUDA runtime {_cuda_version(runtime)}, driver {_cuda_version(driver)}"
    return Backend(
        xp=xp, device=cupy.cuda.Device(index), name=f"cuda:{index}", description=description, library=library
    )


def _cuda_version(v: int) -> str:
    """CUDA's integer versions: 12080 -> "12.8"."""
    return f"{v // 1000}.{v % 1000 // 10}"
