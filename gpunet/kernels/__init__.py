"""The epoch kernels, and the one place that chooses among them.

Every way of running SGD epochs is an :class:`~gpunet.kernels.base.EpochKernel`
with the same few methods; callers ask :func:`choose` and never branch on device
or kernel names. The rule: among the kernels that are usable on this machine,
support the configuration and, on a GPU, have been tested on one, take the one
measured fastest on that device. The measurements behind the order, seconds of
training per epoch for Network([784, 30, 10]), mini-batch 10, float32:

====================  ==========  ===========================  =========================
kernel                device      H100 machine (16-core Xeon)  dev box (2-core AMD EPYC)
====================  ==========  ===========================  =========================
cuda (1 launch/epoch) cuda        0.044 (probe kernel)         no GPU
numba (SIMD rows)     cpu         not measured                 0.047 - 0.055
numba-loop            cpu         0.15 - 0.16                  0.11 - 0.24
portable (NumPy)      cpu         0.85                         0.36 - 0.81
portable (CuPy)       cuda        5.3 - 10                     no GPU
====================  ==========  ===========================  =========================

(H100 figures: ``shared/gpu/README.md``; dev box, shared with other jobs: ``gpunet bench
--device cpu`` and ``gpunet train --device cpu --kernel NAME``, several runs; numba: CPU
seconds of alternating epochs against numba-loop under heavy load, ``docs/cpu-kernel.md``.)
``numba`` and ``numba-loop`` give the same weights bit for bit; the loop is the reference,
taken only where the vector code cannot run. Each machine's own order is the same: cuda,
numba, portable on the CPU, portable on CUDA. The same numbers decide ``--device auto``
(:func:`device_for`): the GPU only when the kernel it would run there is faster than the CPU's.
"""

from __future__ import annotations

import dataclasses

from ..backend import Backend, BackendError, get_backend
from ..errors import ConfigError
from .base import EpochKernel
from .cuda import CudaEpoch
from .numba_cpu import NumbaEpoch, NumbaLoopEpoch
from .portable import PortableEpoch

# Seconds per epoch measured as in the table above, by (kernel, device kind); lower is preferred.
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


register(CudaEpoch)  # opt-in (--kernel cuda) until tested on a GPU
register(NumbaEpoch)
register(NumbaLoopEpoch)  # the reference loop; chosen only where numba's vector code cannot run
register(PortableEpoch)


def device_kind(backend: Backend) -> str:
    """ "cuda" or "cpu": the rows of :data:`MEASURED` that apply to ``backend``."""
    return "cuda" if backend.name.startswith("cuda") else "cpu"


def seconds(kernel: type[EpochKernel], backend: Backend) -> float:
    """The measured s/epoch of ``kernel`` on ``backend``'s kind of device (unmeasured: last)."""
    return MEASURED.get((kernel.name, device_kind(backend)), float("inf"))


def choose(backend: Backend, sizes, dtype: str, batch: int, name: str | None = None):
    """``(kernel class, reason)``: the kernel named, or the fastest that can run this configuration.

    A named kernel that cannot run here is an error (one line); automatically, a kernel that is
    not usable, or untested on a GPU, is passed over and the reason says so.
    """
    if name is not None:
        kernel = KERNELS.get(name)
        if kernel is None:
            raise ConfigError(f"unknown kernel {name!r}: choose one of {', '.join(KERNELS)}")
        why = kernel.unsupported(backend, sizes, dtype, batch)  # first: a CPU-only run need not hear of CuPy
        if why:
            raise ConfigError(f"kernel {name} cannot run this configuration: {why}")
        why = kernel.unusable()
        if why:
            raise BackendError(f"kernel {name} is not usable here: {why}")
        return kernel, "as asked"
    passed_over = []
    for kernel in sorted(KERNELS.values(), key=lambda k: seconds(k, backend)):
        if kernel.unsupported(backend, sizes, dtype, batch):
            continue  # not for this device or configuration: nothing to report
        why = kernel.unusable() or (None if kernel.tested_on_gpu else "untested on a GPU; --kernel opts in")
        if why:
            passed_over.append(f"{kernel.name}: {why}")
            continue
        return kernel, "; ".join(passed_over) or f"the fastest kernel for {device_kind(backend)}"
    raise ConfigError(f"no kernel can run this configuration on {backend.name}")  # portable always can


def device_for(spec: str, sizes, dtype: str, batch: int) -> Backend:
    """The backend for ``--device spec``; ``auto`` takes the GPU only where its kernel beats the CPU's.

    When auto keeps to the CPU on a machine with a usable GPU, ``note`` says why, in one short line.
    """
    backend = get_backend(spec)
    if spec.strip().lower() != "auto" or device_kind(backend) == "cpu":
        return backend
    cpu = get_backend("cpu")
    on_gpu, _ = choose(backend, sizes, dtype, batch)
    on_cpu, _ = choose(cpu, sizes, dtype, batch)
    if seconds(on_gpu, backend) <= seconds(on_cpu, cpu):
        return backend
    note = (
        f"auto chose the CPU: {on_cpu.name} ({seconds(on_cpu, cpu):g} s/epoch measured) beats "
        f"the {on_gpu.name} kernel on {backend.name} ({seconds(on_gpu, backend):g})"
    )
    return dataclasses.replace(cpu, note=note)


def describe() -> list[str]:
    """One line per registered kernel for ``gpunet info``: usable or why not, and untested where so."""
    lines = []
    for kernel in KERNELS.values():
        why = kernel.unusable()
        state = f"not usable: {why}" if why else "usable"
        untested = "" if kernel.tested_on_gpu else ", untested on a GPU (never chosen automatically)"
        lines.append(f"kernel {kernel.name}: {state}{untested}")
    return lines


__all__ = ["KERNELS", "MEASURED", "EpochKernel", "choose", "describe", "device_for", "register"]
