"""The CUDA epoch kernel: whole mini-batches of SGD for N networks in one launch, one thread block each.

The kernel (``sgd_epoch.cu``) computes what :func:`gpunet.maths.sgd_step` computes (either cost, L2 or none: arguments
of a launch, not instantiations), each member's parameters
in shared memory where they fit (the book's [784, 30, 10]) and in global memory (L2) where not; this module
plans memory and launches. Chosen only where its check on the GPU passed; ``--kernel cuda`` forces it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...maths import clip_floor, parameter_count, weight_decay
from ..base import EpochKernel
from .scorer import INDEX_LIMIT, TYPES, Scorer, finish

SOURCE = Path(__file__).with_name("sgd_epoch.cu")
BOOK = ((784, 30, 10), 10, "float32")  # the book's network and mini-batch, which the check always times
EPOCH = 50_000  # examples in an epoch of MNIST training (the rest of the 60,000 are validation)
THREADS = 1024  # threads per block (one block per network); the kernel's __launch_bounds__
OPTIONS = ("--std=c++17", f"-DGPUNET_THREADS={THREADS}")  # CuPy adds the architecture, -ftz=true and more
# Seconds a launch may take: well under the display watchdog's ~2 s where the GPU has one, else short enough that
# a launch is never a long wait. Launches are sized by SLOWEST, multiply-adds per second one block surely does.
WATCHDOG_S, BUDGET_S = 0.1, 1.0
SLOWEST = {"float32": 2e9, "float64": 1e9}
CROSS_ENTROPY = {"quadratic": 0, "cross-entropy": 1}  # the kernel's cost argument, by gpunet.maths.COSTS name


def name_expression(dtype: str, params_shared: bool, work_shared: bool) -> str:
    """The C++ name of one instantiation of the kernel template."""
    flags = ", ".join("true" if f else "false" for f in (params_shared, work_shared))
    return f"gpunet::sgd_epoch<{TYPES[dtype]}, {flags}>"


# Every instantiation the launcher can choose: compiled together on the GPU, and each checked by NVRTC in the suite.
INSTANTIATIONS = tuple(name_expression(d, p, w) for d in TYPES for p in (True, False) for w in (True, False))


@dataclass(frozen=True)
class Plan:
    """Where one member's parameters and workspace live, and the bytes the launch needs (see the .cu header)."""

    params_shared: bool
    work_shared: bool
    shared_bytes: int  # dynamic shared memory per block
    scratch_bytes: int  # global workspace per member (0 when it is in shared memory)
    param_count: int  # P: the values of w^l and b^l of all layers

    def name(self, dtype: str) -> str:
        return name_expression(dtype, self.params_shared, self.work_shared)


def sizes_of(sizes, itemsize: int, batch: int, threads: int = THREADS) -> tuple[int, int, int]:
    """Bytes of one member's parameters, of its workspace, and of the block's partial sums and counters."""
    n0, units = sizes[0], sum(sizes[1:])
    work = itemsize * batch * (n0 + 2 * units) + 4 * (n0 + batch)  # xa, a^l, δ^l; active, rows
    block = itemsize * threads + 4 * (threads + 33)  # partial; counts, group sums, n_active
    return itemsize * parameter_count(sizes), work, block


def layout(sizes, itemsize: int, batch: int, params_shared: bool, work_shared: bool, threads: int = THREADS) -> Plan:
    """The plan with parameters and workspace where asked."""
    params, work, block = sizes_of(sizes, itemsize, batch, threads)
    shared = block + params * params_shared + work * work_shared
    scratch = 0 if work_shared else -(-work // 16) * 16
    return Plan(params_shared, work_shared, shared_bytes=shared, scratch_bytes=scratch, param_count=params // itemsize)


def plan(sizes, itemsize: int, batch: int, budget: int, threads: int = THREADS) -> Plan:
    """The fastest layout within ``budget`` bytes of shared memory: parameters there first (each step reads
    and updates them all), then the workspace (the mini-batch's inputs, activations and deltas)."""
    for params_shared, work_shared in ((True, True), (True, False), (False, True), (False, False)):
        p = layout(sizes, itemsize, batch, params_shared, work_shared, threads)
        if p.shared_bytes <= budget:
            return p
    raise ValueError(f"{budget} bytes of shared memory cannot hold the block's {p.shared_bytes} bytes of counters")


def carveout(shared_bytes: int, per_sm: int) -> int:
    """The percentage of the SM's shared-memory capacity one block needs (with the 1 KiB CUDA reserves per
    block): the hint that leaves the rest to the L1 cache."""
    return min(100, math.ceil(100 * (shared_bytes + 1024) / per_sm))


def too_large(sizes, itemsize: int, batch: int) -> str | None:
    """Why the kernel's 32-bit indices cannot reach all of one member's parameters or workspace, or None."""
    params, work, _ = sizes_of(sizes, itemsize, batch)
    # The prefetch counts an input row's bytes in an int too (sizes[0] * sizeof(T)).
    if params // itemsize < INDEX_LIMIT and work // itemsize < INDEX_LIMIT and sizes[0] * itemsize < INDEX_LIMIT:
        return None
    return (
        f"the cuda kernel indexes a network's parameters and a mini-batch's activations with 32-bit integers; "
        f"sizes {list(sizes)} with mini-batch {batch} need more; use a smaller network or mini-batch"
    )


def steps_per_launch(sizes, batch: int, dtype: str, members: int, sms: int, budget_s: float) -> int:
    """Returns the whole mini-batches one launch may train within ``budget_s`` seconds: at most 3 multiply-adds
    per weight and example a step (feedforward, BP2, BP4), blocks on ``sms`` SMs in waves, at ``SLOWEST``."""
    step_s = 3 * batch * parameter_count(sizes) / SLOWEST[dtype] * -(-members // sms)
    return max(1, int(budget_s / step_s))


def launches(k: int, batch: int, steps: int) -> list[tuple[int, int]]:
    """Returns the columns ``[start, stop)`` of ``order`` each launch trains: ``steps`` whole mini-batches each,
    the last launch the rest. Every state between mini-batches is in the parameters and the scale trick's s (kept
    on the device between launches), so the split is exact."""
    per = steps * batch
    return [(start, min(start + per, k)) for start in range(0, k, per)]


@functools.cache
def _detect() -> str | None:
    """Why CuPy cannot run kernels on this machine (with an install hint), or None; asked once."""
    from ...backend import BackendError, get_backend

    try:
        get_backend("cuda")
    except BackendError as e:
        return getattr(e, "reason", str(e))  # why CUDA cannot run, not "CUDA requested": nothing asked for it
    return None


def _unknown_cost(cost) -> str | None:
    """Why sgd_epoch.cu cannot train with ``cost``, or None: it has the BP1 of the costs in ``CROSS_ENTROPY``."""
    if cost not in CROSS_ENTROPY:
        return f"the cuda kernel trains with the costs {', '.join(CROSS_ENTROPY)}, not {cost}; use --device cpu"
    return None


class CudaEpoch(EpochKernel):
    """Whole epochs on a CUDA GPU through CuPy: one launch trains all N members, one block each."""

    name = "cuda"
    needs_check = True

    @classmethod
    def unusable(cls) -> str | None:
        return _detect()

    @classmethod
    def unsupported(cls, backend, sizes, dtype: str, batch: int) -> str | None:
        if not backend.name.startswith("cuda"):
            return f"the cuda kernel runs on CUDA devices only, not on {backend.name}; use --device cuda"
        if dtype not in TYPES:
            return f"the cuda kernel supports float32 and float64, not {dtype}"
        return too_large(sizes, np.dtype(dtype).itemsize, batch)

    def __init__(self, backend, x, y):
        import cupy

        super().__init__(backend, x, y)
        # CuPy compiles for and launches on the thread's current device: make it the backend's for each call.
        device = getattr(backend, "device", None)
        self.device = cupy.cuda.Device() if device is None else device
        with self.device:
            self._prepare(cupy, x, y)

    def _prepare(self, cupy, x, y):
        self.x = cupy.ascontiguousarray(x)
        self.y = cupy.ascontiguousarray(y, dtype=self.x.dtype)
        if self.x.shape[0] >= INDEX_LIMIT:
            raise ValueError(f"the cuda kernel indexes examples with 32-bit integers; {self.x.shape[0]} is too many")
        self.dtype = np.dtype(self.x.dtype).name
        source = SOURCE.read_text(encoding="utf-8")
        module = cupy.RawModule(code=source, options=OPTIONS, name_expressions=INSTANTIATIONS)
        module.compile()  # all instantiations at once, outside any timed epoch; CuPy caches the cubin on disk
        self.functions = {name: module.get_function(name) for name in INSTANTIATIONS}
        properties = cupy.cuda.runtime.getDeviceProperties(self.device.id)
        # The opt-in bounds dynamic and static shared memory together (sm_90 and later: 1 KiB static).
        static = max(f.shared_size_bytes for f in self.functions.values())
        self.budget = properties["sharedMemPerBlockOptin"] - static
        self.per_sm = properties["sharedMemPerMultiprocessor"]
        self.sms = properties["multiProcessorCount"]
        runtime = cupy.cuda.runtime
        watchdog = runtime.deviceGetAttribute(runtime.cudaDevAttrKernelExecTimeout, self.device.id)
        self.launch_s = WATCHDOG_S if watchdog else BUDGET_S
        self.scorer = Scorer(cupy, properties["sharedMemPerBlockOptin"])  # evaluate.cu: a stack in one launch

    def score(self, weights, biases, x, labels):
        with self.device:
            counts = self.scorer(weights, biases, x, labels)
        return super().score(weights, biases, x, labels) if counts is None else counts

    @classmethod
    def cannot_train(cls, cost: str = "quadratic", lmbda=0.0) -> str | None:
        return _unknown_cost(cost)

    def __call__(self, weights, biases, order, batch: int, eta, cost="quadratic", lmbda=0.0):
        if reason := _unknown_cost(cost):
            raise ValueError(reason)
        with self.device:
            return self._run(weights, biases, order, batch, eta, cost, lmbda)

    def _run(self, weights, biases, order, batch: int, eta, cost, lmbda):
        import cupy

        members = weights[0].shape[0]
        if members == 0:
            return weights, biases
        sizes = [weights[0].shape[-1]] + [w.shape[-2] for w in weights]
        order = np.asarray(order)
        if order.size // members + batch >= INDEX_LIMIT:  # the kernel's int k, and start + batch after the last step
            raise ValueError(
                f"the cuda kernel counts a call's examples in 32 bits; {order.size // members} is too many"
            )
        order = np.ascontiguousarray(order, dtype=np.int64).reshape(members, -1)
        if order.size and (order.min() < 0 or order.max() >= self.x.shape[0]):
            raise IndexError(f"order holds example indices outside 0..{self.x.shape[0] - 1}")
        eta = np.ascontiguousarray(np.broadcast_to(np.asarray(eta, dtype=np.float64), (members,)))
        lmbda = np.broadcast_to(np.asarray(lmbda, dtype=np.float64), (members,))
        decay = np.ascontiguousarray(weight_decay(eta, lmbda, self.x.shape[0]))  # L2's n: the training set's size
        if reason := too_large(sizes, np.dtype(self.dtype).itemsize, batch):
            raise ValueError(reason)
        p = plan(sizes, np.dtype(self.dtype).itemsize, batch, self.budget, threads=THREADS)
        # All of a member's parameters in one row, layer after layer: w^l (row-major), then b^l.
        params = cupy.concatenate([a.reshape(members, -1) for wb in zip(weights, biases) for a in wb], axis=1)
        params = cupy.ascontiguousarray(params, dtype=self.dtype)
        scratch = cupy.empty(members * p.scratch_bytes, dtype=cupy.uint8)
        kernel = self.functions[p.name(self.dtype)]
        if p.shared_bytes > kernel.max_dynamic_shared_size_bytes:  # above the default (48 KiB less static): opt in
            kernel.max_dynamic_shared_size_bytes = p.shared_bytes
        # The rest of the SM's 256 KiB is L1, which holds what is in global memory (parameters that did not fit).
        kernel.preferred_shared_memory_carveout = carveout(p.shared_bytes, self.per_sm)
        steps = steps_per_launch(sizes, batch, self.dtype, members, self.sms, self.launch_s)
        eta, decay, sizes_d = cupy.asarray(eta), cupy.asarray(decay), cupy.asarray(np.array(sizes, dtype=np.int32))
        lowest = np.dtype(self.dtype).type(clip_floor(np.finfo(self.dtype)))
        first_scale = cupy.asarray(np.ones(members))  # the scale trick's s of each member, carried between launches
        for start, stop in launches(order.shape[1], batch, steps):
            part = cupy.asarray(np.ascontiguousarray(order[:, start:stop], dtype=np.int32))
            head = (params, np.int64(p.param_count), scratch, np.int64(p.scratch_bytes), self.x, self.y, part)
            tail = (np.int32(stop - start), eta, decay, first_scale, sizes_d, np.int32(len(weights)), np.int32(batch))
            objective = (lowest, np.int32(CROSS_ENTROPY[cost]), np.int32(stop == order.shape[1]))
            kernel((members,), (THREADS,), head + tail + objective, shared_mem=p.shared_bytes)
            finish(cupy, p.name(self.dtype))
        new_weights, new_biases, at = [], [], 0
        for n_in, n in zip(sizes[:-1], sizes[1:]):
            new_weights.append(params[:, at : at + n * n_in].reshape(members, n, n_in))
            at += n * n_in
            new_biases.append(params[:, at : at + n].reshape(members, n, 1))
            at += n
        return new_weights, new_biases
