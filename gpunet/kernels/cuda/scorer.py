"""Every member of a stack scored in one CUDA launch: :meth:`.launcher.CudaEpoch.score`.

The kernel (``evaluate.cu``) counts, for each member, the test inputs whose most active output
neuron is the label, as :meth:`gpunet.network.Network.evaluate` does one network at a time; a sweep reads
the N counts back once an epoch. This module plans its shared memory, launches it, and checks it against
the portable scorer (:func:`gpunet.kernels.cuda.check.check_score`, one case of the GPU self-check).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...maths import clip_floor, parameter_count

TYPES = {"float32": "float", "float64": "double"}  # the C++ type of each dtype, in both kernels
# The kernels index one member's parameters and workspace with 32-bit ints; their loops `for (t = tid; t < n;
# t += blockDim.x)` step up to 1024 past n before they stop, so n keeps that much below 2^31.
INDEX_LIMIT = 2**31 - 1024
SOURCE = Path(__file__).with_name("evaluate.cu")
THREADS = 256  # test inputs per block, one a thread; the kernel's __launch_bounds__
LAUNCH_TIMEOUT = 702  # cudaErrorLaunchTimeout (CUDA_ERROR_LAUNCH_TIMEOUT): the display's watchdog stopped a kernel
OPTIONS = ("--std=c++17", f"-DGPUNET_SCORE_THREADS={THREADS}")


def name_expression(dtype: str, params_shared: bool) -> str:
    """The C++ name of one instantiation of the kernel template."""
    return f"gpunet::evaluate<{TYPES[dtype]}, {'true' if params_shared else 'false'}>"


# Every instantiation the launcher can choose: compiled together, and each checked by NVRTC in the suite.
INSTANTIATIONS = tuple(name_expression(d, s) for d in TYPES for s in (True, False))


@dataclass(frozen=True)
class Plan:
    params_shared: bool
    shared_bytes: int  # dynamic shared memory per block
    param_count: int

    def name(self, dtype: str) -> str:
        return name_expression(dtype, self.params_shared)


def plan(sizes, itemsize: int, budget: int, threads: int = THREADS) -> Plan | None:
    """The block's shared memory (see the .cu header): the hidden activations of its inputs and its counts,
    then the member's parameters where they fit. None where even the activations do not fit."""
    param_count = parameter_count(sizes)
    block = itemsize * sum(sizes[1:-1]) * threads + 4 * threads
    for params_shared in (True, False):
        need = block + itemsize * param_count * params_shared
        if need <= budget:
            return Plan(params_shared, need, param_count)
    return None


def finish(cupy, name: str) -> None:
    """Waits for the launch of kernel ``name``, so that its fault (reported by CUDA at the next wait or read)
    is reported as this kernel's; a launch the display's watchdog stopped ends in one line saying what to do."""
    from ...backend import BackendError
    from ...errors import one_line

    try:
        cupy.cuda.get_current_stream().synchronize()
    except Exception as e:  # noqa: BLE001 - CuPy's CUDARuntimeError or CUDADriverError, with the CUDA status
        if getattr(e, "status", None) == LAUNCH_TIMEOUT:
            raise BackendError(
                f"the display's watchdog stopped the cuda kernel {name} (cudaErrorLaunchTimeout); train on a GPU "
                "that drives no display, or with --kernel portable"
            ) from None
        raise RuntimeError(f"the cuda kernel {name} failed: {one_line(e)}") from e


class Scorer:
    """The compiled kernels, and the last test inputs as columns (sent again only when other inputs come)."""

    def __init__(self, cupy, optin: int):
        source = SOURCE.read_text(encoding="utf-8")
        module = cupy.RawModule(code=source, options=OPTIONS, name_expressions=INSTANTIATIONS)
        module.compile()
        self.functions = {name: module.get_function(name) for name in INSTANTIATIONS}
        self.budget = optin - max(f.shared_size_bytes for f in self.functions.values())  # less static shared memory
        self._inputs: tuple = ()  # (x, labels, their device columns and int32 labels)

    def __call__(self, weights, biases, x, labels):
        """Each member's count, an int32 device array ``(N,)``; None where the kernel cannot score this
        stack (too large for its shared memory or 32-bit indices): the caller scores it portably."""
        import cupy

        members, n = weights[0].shape[0], x.shape[0]
        dtype = np.dtype(weights[0].dtype).name
        sizes = [weights[0].shape[-1]] + [w.shape[-2] for w in weights]
        p = plan(sizes, np.dtype(dtype).itemsize, self.budget, THREADS)
        tiles = -(-n // THREADS)
        if p is None or p.param_count >= INDEX_LIMIT or n >= INDEX_LIMIT or members * tiles >= 2**31:
            return None
        counts = cupy.zeros((members,), dtype=np.int32)
        if members == 0 or n == 0:
            return counts
        if not self._inputs or self._inputs[0] is not x or self._inputs[1] is not labels:
            columns = cupy.ascontiguousarray(x.T, dtype=dtype)
            self._inputs = (x, labels, columns, cupy.asarray(labels, dtype=np.int32))
        _, _, columns, labels32 = self._inputs
        # All of a member's parameters in one row, as the training kernel packs them: w^l (row-major), b^l.
        params = cupy.concatenate([a.reshape(members, -1) for wb in zip(weights, biases) for a in wb], axis=1)
        params = cupy.ascontiguousarray(params, dtype=dtype)
        kernel = self.functions[p.name(dtype)]
        if p.shared_bytes > kernel.max_dynamic_shared_size_bytes:  # above the default (48 KiB less static): opt in
            kernel.max_dynamic_shared_size_bytes = p.shared_bytes
        args = (
            params,
            np.int64(p.param_count),
            columns,
            labels32,
            np.int32(n),
            cupy.asarray(np.array(sizes, dtype=np.int32)),
            np.int32(len(weights)),
            np.dtype(dtype).type(clip_floor(np.finfo(dtype))),
            counts,
        )
        kernel((members * tiles,), (THREADS,), args, shared_mem=p.shared_bytes)
        finish(cupy, p.name(dtype))
        return counts


# Parameters in shared memory (f32 [784, 30, 10], f64 three layers) and in global memory (f64 [784, 30, 10],
# f32 [784, 100, 10]) on a GPU with 227 KiB a block: every instantiation.
CASES = ((784, 30, 10), (784, 100, 10), (30, 20, 15, 10))
