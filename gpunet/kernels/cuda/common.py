"""What the CUDA launchers (:mod:`.launcher`, :mod:`.scorer`) share: the C++ type of each dtype and the reach of
the kernels' 32-bit indices."""

TYPES = {"float32": "float", "float64": "double"}
# The kernel indexes one member's parameters and workspace with 32-bit ints; its loops `for (t = tid; t < n;
# t += blockDim.x)` step up to 1024 past n before they stop, so n keeps that much below 2^31.
INDEX_LIMIT = 2**31 - 1024
