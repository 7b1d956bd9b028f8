"""The one place that chooses an epoch kernel: every kernel registered once, ordered by :data:`MEASURED`
(seconds per epoch, the figures and how they were measured are in docs/speed.md), and :func:`choose`,
:func:`device_for` and :func:`describe`, which read the CUDA kernel's kept verdicts for this GPU."""

from __future__ import annotations

import dataclasses

from ..backend import Backend, BackendError, get_backend
from ..errors import ConfigError
from .base import EpochKernel, config_key
from .cuda import verdicts
from .cuda.launcher import CudaEpoch
from .numba_cpu import NumbaEpoch, NumbaLoopEpoch
from .portable import PortableEpoch

# Seconds per epoch of Network([784, 30, 10]), mini-batch 10, float32, by (kernel, device kind): docs/speed.md.
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


register(CudaEpoch)  # where its check on this GPU passed (gpunet.kernels.cuda.verdicts)
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


def checked(kernel, backend, sizes, dtype: str, batch: int, run: bool = True, timing: bool = False):
    """What the check of a kernel that needs one found on ``backend``'s device (a :class:`verdicts.Verdict`),
    checking now if ``run`` and nothing is kept (``timing``: with this configuration timed); None for a kernel
    that needs no check, or where nothing is known."""
    if not kernel.needs_check:
        return None
    device = getattr(getattr(backend, "device", None), "id", 0)
    return verdicts.verdict(device, config_key(sizes, batch, dtype), run=run, timing=timing)


def choose(backend: Backend, sizes, dtype: str, batch: int, name: str | None = None):
    """``(kernel class, reason)``: the kernel named, or the fastest that can run this configuration.

    A named kernel that cannot run here is an error (one line); one whose check here failed runs, with a
    one-line warning. Automatically, a kernel that is not usable, or whose check on this machine failed
    (:mod:`gpunet.kernels.cuda.verdicts`; the first call checks), is passed over and the reason says so.
    """
    config = config_key(sizes, batch, dtype)
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
        verdict = checked(kernel, backend, sizes, dtype, batch)
        if verdict is not None and not verdict.passed:
            verdicts.say_once(f"warning: --kernel {name} runs a kernel that {verdict.describe()}")
        return kernel, "as asked" + (f"; {verdict.describe(config)}" if verdict else "")
    passed_over = []
    for kernel, why in candidates(backend, sizes, dtype, batch):  # unsupported ones: nothing to report
        verdict = None if why else checked(kernel, backend, sizes, dtype, batch)
        if verdict is not None and not verdict.passed:
            why = verdict.describe(config)
        if why:
            passed_over.append(f"{kernel.name}: {why}")
            continue
        if verdict is not None:
            return kernel, verdict.describe(config)
        return kernel, "; ".join(passed_over) or f"the fastest kernel for {device_kind(backend)}"
    raise ConfigError(f"no kernel can run this configuration on {backend.name}")  # portable always can


def _verdicts(backend: Backend, sizes, dtype: str, batch: int, timing: bool = False):
    """(kernel, verdict) for each usable kernel that needs a check to run this configuration on ``backend``."""
    for kernel in KERNELS.values():
        if kernel.needs_check and not kernel.unsupported(backend, sizes, dtype, batch) and not kernel.unusable():
            verdict = checked(kernel, backend, sizes, dtype, batch, timing=timing)
            if verdict is not None:
                yield kernel, verdict


def measured_here(backend: Backend, sizes, dtype: str, batch: int) -> dict | None:
    """This GPU's own figures for the configuration (s/epoch by kernel name, and "cpu"), timed by the check of a
    kernel that needs one (timing it now if not yet), or None where no check has passed here."""
    for _, verdict in _verdicts(backend, sizes, dtype, batch, timing=True):
        if verdict.passed:
            return verdict.seconds(config_key(sizes, batch, dtype))
    return None


def device_for(spec: str, sizes, dtype: str, batch: int) -> Backend:
    """The backend for ``--device spec``; ``auto`` takes the GPU only where its kernel beats the CPU's, as
    measured on this machine by the GPU kernel's check (:data:`MEASURED` where nothing is measured here).

    When auto keeps to the CPU on a machine with a usable GPU, ``note`` says why, in one short line.
    """
    backend = get_backend(spec)
    if spec.strip().lower() != "auto" or device_kind(backend) == "cpu":
        return backend
    cpu = get_backend("cpu")
    on_gpu, _ = choose(backend, sizes, dtype, batch)
    on_cpu, _ = choose(cpu, sizes, dtype, batch)
    gpu_s, cpu_s, source = seconds(on_gpu, backend), seconds(on_cpu, cpu), "measured"
    here = measured_here(backend, sizes, dtype, batch)
    if here and on_gpu.name in here and here.get("cpu_kernel") == on_cpu.name:
        gpu_s, cpu_s, source = here[on_gpu.name], here["cpu"], "measured here"
    if gpu_s <= cpu_s:
        return backend
    failed = "".join(f"; {k.name}: {v.describe()}" for k, v in _verdicts(backend, sizes, dtype, batch) if not v.passed)
    note = (
        f"auto chose the CPU: {on_cpu.name} ({cpu_s:.2g} s/epoch {source}) beats "
        f"the {on_gpu.name} kernel on {backend.name} ({gpu_s:.2g}){failed}"
    )
    return dataclasses.replace(cpu, note=note)


def describe() -> list[str]:
    """One line per registered kernel for ``gpunet info``: usable or why not, and what its check here found
    (read from what is kept: ``info`` never starts a check)."""
    try:
        gpu: Backend | None = get_backend("cuda")
    except BackendError:
        gpu = None
    lines = []
    for kernel in KERNELS.values():
        why = kernel.unusable()
        state = f"not usable: {why}" if why else "usable"
        if not why and kernel.needs_check:
            verdict = None
            book = ([784, 30, 10], "float32", 10)
            if gpu is not None and not kernel.unsupported(gpu, *book):
                verdict = checked(kernel, gpu, *book, run=False)
            state += f", {verdict.describe(config_key([784, 30, 10], 10, 'float32'))}" if verdict else (
                ", not yet checked on this GPU (the first CUDA run checks it; or run `gpunet check`)")  # fmt: skip
        lines.append(f"kernel {kernel.name}: {state}")
    return lines
