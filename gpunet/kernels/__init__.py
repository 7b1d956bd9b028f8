"""The epoch kernels, and the one place that chooses among them.

Every way of running SGD epochs is an :class:`~gpunet.kernels.base.EpochKernel`: the portable array-API
path (:mod:`.portable`), numba's CPU kernels (:mod:`.numba_cpu`) and the CUDA kernel (:mod:`.cuda`). Callers
ask :func:`~.registry.choose`, never branching on device or kernel names: of the kernels usable here for the
configuration (CUDA's only where its check on this GPU passed), it takes the one measured fastest on that
device (:data:`~.registry.MEASURED`, docs/speed.md). Only it, as a kernel is about to train, or ``gpunet
check`` starts that check.
"""

from __future__ import annotations

from .base import EpochKernel
from .numba_cpu import compile_seconds
from .registry import KERNELS, MEASURED, choose, describe, device_for, device_kind, register

__all__ = [
    "KERNELS",
    "MEASURED",
    "EpochKernel",
    "choose",
    "compile_seconds",
    "describe",
    "device_for",
    "device_kind",
    "register",
]
