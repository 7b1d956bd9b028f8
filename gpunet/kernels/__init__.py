"""The epoch kernels, and the one place that chooses among them.

Every way of running SGD epochs is an :class:`~gpunet.kernels.base.EpochKernel` with the same few methods:
the portable array-API path (:mod:`.portable`), numba's CPU kernels (:mod:`.numba_cpu`) and the CUDA kernel
(:mod:`.cuda`: its launcher, scorer, self-check and the verdicts kept per GPU). Callers ask
:func:`~.registry.choose` and never branch on device or kernel names: among the kernels usable here that
support the configuration and, where one needs it (CUDA), passed its check on this GPU, it takes the one
measured fastest on that device (:data:`~.registry.MEASURED`; the measurements are in docs/speed.md). Only
:func:`~.registry.choose`, as a kernel is about to train, or ``gpunet check`` starts that check.
"""

from __future__ import annotations

from .base import EpochKernel
from .registry import KERNELS, MEASURED, choose, describe, device_for, device_kind, register

__all__ = ["KERNELS", "MEASURED", "EpochKernel", "choose", "describe", "device_for", "device_kind", "register"]
