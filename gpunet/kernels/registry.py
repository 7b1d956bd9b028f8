"""The registry of epoch kernels: every kernel registered once, in the order measured fastest per device.

:func:`gpunet.kernels.choose` picks from it; the table behind :data:`MEASURED` is in that package's docstring.
"""

from __future__ import annotations

from ..backend import Backend
from .base import EpochKernel
from .cuda import CudaEpoch
from .numba_cpu import NumbaEpoch, NumbaLoopEpoch
from .portable import PortableEpoch

# Seconds per epoch measured as in gpunet.kernels' table, by (kernel, device kind); lower is preferred.
MEASURED = {
    ("cuda", "cuda"): 0.044,
    ("numba", "cpu"): 0.05,
    ("numba-loop", "cpu"): 0.16,
    ("portable", "cpu"): 0.85,
    ("portable", "cuda"): 5.3,
}

KERNELS: dict[str, type[EpochKernel]] = {}


def register(kernel: type[EpochKernel]) -> type[EpochKernel]:
    """Add a kernel to the registry; :func:`choose` orders them by :data:`MEASURED`."""
    KERNELS[kernel.name] = kernel
    return kernel


register(CudaEpoch)  # where its check on this GPU passed (gpunet.kernels.wisdom)
register(NumbaEpoch)
register(NumbaLoopEpoch)  # the reference loop; chosen only where numba's vector code cannot run
register(PortableEpoch)


def device_kind(backend: Backend) -> str:
    """ "cuda" or "cpu": the rows of :data:`MEASURED` that apply to ``backend``."""
    return "cuda" if backend.name.startswith("cuda") else "cpu"


def seconds(kernel: type[EpochKernel], backend: Backend) -> float:
    """The measured s/epoch of ``kernel`` on ``backend``'s kind of device (unmeasured: last)."""
    return MEASURED.get((kernel.name, device_kind(backend)), float("inf"))


def candidates(backend, sizes, dtype: str, batch: int):
    """``(kernel, why not)`` for each kernel that supports this configuration on ``backend``, fastest first;
    ``why not`` is None for a usable kernel (a check on this machine, where one is needed, comes after)."""
    for kernel in sorted(KERNELS.values(), key=lambda k: seconds(k, backend)):
        if not kernel.unsupported(backend, sizes, dtype, batch):
            yield kernel, kernel.unusable()
