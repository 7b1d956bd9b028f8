"""The one place that chooses an epoch kernel: every kernel registered once (:data:`KERNELS`), ordered by
:data:`MEASURED`, and :func:`choose`, :func:`device_for` and :func:`describe`. Only :func:`choose`, as a kernel is
about to train, starts the CUDA kernel's check on this GPU; the rest read the check's kept verdicts."""

from __future__ import annotations

import dataclasses

from ..backend import Backend, BackendError, get_backend
from ..errors import ConfigError
from .base import EpochKernel, config_key
from .cuda import verdicts
from .cuda.launcher import CudaEpoch
from .numba_cpu import NumbaEpoch, NumbaLoopEpoch
from .portable import PortableEpoch

# Seconds per epoch of Network([784, 30, 10]), mini-batch 10, float32, by (kernel, device kind): the order where
# this GPU's check has measured nothing. Where these come from: docs/speed.md (the kernels' order).
MEASURED = {
    ("cuda", "cuda"): 0.044,
    ("numba", "cpu"): 0.05,
    ("numba-loop", "cpu"): 0.16,
    ("portable", "cpu"): 0.85,
    ("portable", "cuda"): 5.3,
}
BOOK = ([784, 30, 10], "float32", 10)  # the configuration `gpunet info` describes

KERNELS: dict[str, type[EpochKernel]] = {}


def register(kernel: type[EpochKernel]) -> type[EpochKernel]:
    """Returns ``kernel``, added to :data:`KERNELS` (where :func:`choose` orders it by :data:`MEASURED`)."""
    KERNELS[kernel.name] = kernel
    return kernel


register(CudaEpoch)  # where its check on this GPU passed (gpunet.kernels.cuda.verdicts)
register(NumbaEpoch)
register(NumbaLoopEpoch)  # the reference loop; chosen only where numba's vector code cannot run
register(PortableEpoch)


def device_kind(backend: Backend) -> str:
    """Returns "cuda" or "cpu": the rows of :data:`MEASURED` that apply to ``backend``."""
    return "cuda" if backend.name.startswith("cuda") else "cpu"


def seconds(kernel: type[EpochKernel], backend: Backend) -> float:
    """Returns the measured s/epoch of ``kernel`` on ``backend``'s kind of device (unmeasured: infinity)."""
    return MEASURED.get((kernel.name, device_kind(backend)), float("inf"))


def why_unsupported(kernel, backend, sizes, dtype: str, batch: int, **objective) -> str | None:
    """Why ``kernel`` cannot run this configuration, or train with ``objective`` (``cost``, ``lmbda``), or None."""
    return kernel.unsupported(backend, sizes, dtype, batch) or (kernel.cannot_train(**objective) if objective else None)


def candidates(backend, sizes, dtype: str, batch: int, **objective):
    """Yields ``(kernel, why not)`` for each kernel that supports this configuration on ``backend``, fastest first;
    ``why not`` is None for a usable kernel (its check on this GPU, where it needs one, is not asked). ``objective``:
    the epoch's ``cost`` and ``lmbda``, as :meth:`EpochKernel.unsupported` takes them."""
    for kernel in sorted(KERNELS.values(), key=lambda k: seconds(k, backend)):
        if not why_unsupported(kernel, backend, sizes, dtype, batch, **objective):
            yield kernel, kernel.unusable()


def verdict_for(kernel, backend, sizes, dtype: str, batch: int, check: bool = False):
    """Returns ``kernel``'s :class:`verdicts.Verdict` on ``backend``'s GPU: the kept one, or with ``check`` one found
    now where none is kept; None for a kernel that needs no check, or where none is kept and not ``check``."""
    if not kernel.needs_check:
        return None
    device = getattr(getattr(backend, "device", None), "id", 0)
    return verdicts.verdict(device, config_key(sizes, batch, dtype)) if check else verdicts.kept(device)


def choose(
    backend: Backend, sizes, dtype: str, batch: int, name: str | None = None, *, check: bool = True, **objective
):
    """Returns ``(kernel class, reason)``: the kernel named, or the fastest that can run this configuration
    (``objective``: the epoch's ``cost`` and ``lmbda``; chapter 1's quadratic cost and no L2 if left out).

    A named kernel that cannot run here is a one-line error; one whose check here failed runs, with a warning.
    Otherwise one unusable, or whose check on this GPU failed, is passed over and the reason says so. ``check``:
    a kernel that needs its check here and has none kept is checked now, as it is about to train; else taken.
    """
    config = config_key(sizes, batch, dtype)
    if name is not None:
        kernel = KERNELS.get(name)
        if kernel is None:
            raise ConfigError(f"unknown kernel {name!r}: choose one of {', '.join(KERNELS)}")
        why = why_unsupported(
            kernel, backend, sizes, dtype, batch, **objective
        )  # first: a CPU-only run need not hear of CuPy
        if why:
            raise ConfigError(f"kernel {name} cannot run this configuration: {why}")
        why = kernel.unusable()
        if why:
            raise BackendError(f"kernel {name} is not usable here: {why}")
        verdict = verdict_for(kernel, backend, sizes, dtype, batch, check)
        if verdict is not None and not verdict.passed:
            verdicts.say_once(f"warning: --kernel {name} runs a kernel that {verdict.describe()}")
        return kernel, "as asked" + (f"; {verdict.describe(config)}" if verdict else "")
    passed_over = []
    for kernel, why in candidates(backend, sizes, dtype, batch, **objective):  # unsupported ones: nothing to report
        verdict = None if why else verdict_for(kernel, backend, sizes, dtype, batch, check)
        if verdict is not None and not verdict.passed:
            why = verdict.describe(config)
        if why:
            passed_over.append(f"{kernel.name}: {why}")
            continue
        if verdict is not None:
            return kernel, verdict.describe(config)
        return kernel, "; ".join(passed_over) or f"the fastest kernel for {device_kind(backend)}"
    raise ConfigError(f"no kernel can run this configuration on {backend.name}")  # portable always can


def device_for(spec: str, sizes, dtype: str, batch: int) -> Backend:
    """Returns the backend for ``--device spec``; ``auto`` takes the GPU only where its kernel beats the CPU's, as
    this GPU's kept check measured them (else :data:`MEASURED`), never starting a check; else ``note`` says why."""
    backend = get_backend(spec)
    if spec.strip().lower() != "auto" or device_kind(backend) == "cpu":
        return backend
    cpu = get_backend("cpu")
    on_gpu, _ = choose(backend, sizes, dtype, batch, check=False)
    on_cpu, _ = choose(cpu, sizes, dtype, batch)
    gpu_s, cpu_s, source = seconds(on_gpu, backend), seconds(on_cpu, cpu), "measured"
    usable = [k for k, why in candidates(backend, sizes, dtype, batch) if why is None]
    kept = [(k, v) for k in usable if (v := verdict_for(k, backend, sizes, dtype, batch)) is not None]
    here = next((v.seconds(config_key(sizes, batch, dtype)) for _, v in kept if v.passed), None)  # the GPU's own
    if here and on_gpu.name in here and here.get("cpu_kernel") == on_cpu.name:
        gpu_s, cpu_s, source = here[on_gpu.name], here["cpu"], "measured here"
    if gpu_s <= cpu_s:
        return backend
    failed = "".join(f"; {k.name}: {v.describe()}" for k, v in kept if not v.passed)
    note = (
        f"auto chose the CPU: {on_cpu.name} ({cpu_s:.2g} s/epoch {source}) beats "
        f"the {on_gpu.name} kernel on {backend.name} ({gpu_s:.2g}){failed}"
    )
    return dataclasses.replace(cpu, note=note)


def describe() -> list[str]:
    """Returns one line per registered kernel for ``gpunet info``: usable or why not, and what its kept check on
    this GPU found (``info`` never starts a check)."""
    try:
        gpu: Backend | None = get_backend("cuda")
    except BackendError:
        gpu = None
    lines = []
    for kernel in KERNELS.values():
        why = kernel.unusable()
        state = f"not usable: {why}" if why else "usable"
        if not why and kernel.needs_check:
            verdict = verdict_for(kernel, gpu, *BOOK) if gpu and not kernel.unsupported(gpu, *BOOK) else None
            unchecked = "not yet checked on this GPU (the first CUDA run checks it; or run `gpunet check`)"
            state += f", {verdict.describe(verdicts.BOOK) if verdict else unchecked}"
        lines.append(f"kernel {kernel.name}: {state}")
    return lines
