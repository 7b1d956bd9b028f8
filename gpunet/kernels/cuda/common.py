"""What the CUDA launchers (:mod:`.cuda`, :mod:`.cuda_score`) share: the C++ type of each dtype, the reach of
the kernels' 32-bit indices, and where σ clips z."""

from __future__ import annotations

import math

import numpy as np

TYPES = {"float32": "float", "float64": "double"}
# The kernel indexes one member's parameters and workspace with 32-bit ints; its loops `for (t = tid; t < n;
# t += blockDim.x)` step up to 1024 past n before they stop, so n keeps that much below 2^31.
INDEX_LIMIT = 2**31 - 1024


def clip_floor(dtype) -> float:
    """Where σ clips z from below, as gpunet.maths.sigmoid does: -floor(log(largest finite value))."""
    return -math.floor(math.log(np.finfo(dtype).max))
