"""The numba kernel: each member's epoch as one compiled loop on the CPU, members in parallel threads.

The loop itself is in :mod:`gpunet.kernels._numba_epoch`. It releases the GIL, so a
stack of N networks runs on up to ``os.cpu_count()`` threads, one member each; every
member's result is the same, bit for bit, as when it runs alone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import one_line
from .base import EpochKernel, count_correct


def _member(weights, biases, csr, y, perm, batch: int, eta: float):
    """One network's SGD over ``perm``: its new (weights, biases), as (n_out, n_in) and (n_out, 1) arrays."""
    from ._numba_epoch import _epoch

    dtype = weights[0].dtype
    wts = tuple(np.ascontiguousarray(w.T) for w in weights)  # wᵀ: the loop adds whole rows of it
    bs = tuple(np.ascontiguousarray(b[:, 0]) for b in biases)
    m = max(1, min(batch, len(perm)))
    acts = tuple(np.empty((m, w.shape[0]), dtype) for w in weights)
    deltas = tuple(np.empty_like(a) for a in acts)
    lowest = -math.floor(math.log(np.finfo(dtype).max))  # as sigmoid() clips in the portable kernel
    eta_over = (eta / np.arange(1, m + 1)).astype(dtype)
    _epoch(wts, bs, acts, deltas, *csr, y, np.ascontiguousarray(perm, np.int64), batch, eta_over,
           dtype.type(lowest), dtype.type(1))  # fmt: skip
    return [w.T for w in wts], [b[:, None] for b in bs]


@functools.cache
def _detect() -> str | None:
    """Import numba and compile a tiny epoch, once: why the kernel cannot run here, or None."""
    try:
        importlib.import_module(f"{__package__}._numba_epoch")
    except ImportError as e:
        if getattr(e, "name", None) == "numba":
            return "numba is not installed (pip install 'gpunet[numba]')"
        return f"numba failed to import ({one_line(e)}); reinstall or uninstall it"
    except Exception as e:  # noqa: BLE001 - a broken install fails in many ways
        return f"numba failed to import ({one_line(e)}); reinstall or uninstall it"
    try:
        x = np.array([[0.0, 1.0], [1.0, 0.0]])
        _member([np.zeros((2, 2))], [np.zeros((2, 1))], _csr(x), x, np.array([1, 0]), 1, 1.0)
    except Exception as e:  # noqa: BLE001
        return f"numba failed to compile the epoch ({one_line(e)}); reinstall or uninstall it"
    return None


def _csr(x: np.ndarray):
    """The inputs in compressed-row form: (indptr, indices, values) of the non-zero pixels of each row."""
    rows, cols = np.nonzero(x)  # row-major order: the non-zero pixels of each input in turn
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=x.shape[0])))).astype(np.int64)
    return indptr, cols.astype(np.int64), np.ascontiguousarray(x[rows, cols])


class NumbaEpoch(EpochKernel):
    """Compiled whole epochs on NumPy arrays, skipping zero pixels; CPU only."""

    name = "numba"

    @classmethod
    def unusable(cls):
        return _detect()

    @classmethod
    def unsupported(cls, backend, sizes, dtype, batch):
        return None if backend.name == "cpu" else "runs on the CPU (NumPy arrays) only"

    def __init__(self, backend, x, y):
        super().__init__(backend, x, y)
        self.csr = _csr(np.asarray(x))
        self.y = np.ascontiguousarray(y)

    def __call__(self, weights, biases, order, batch, eta):
        members = order.shape[0]
        eta = np.broadcast_to(np.asarray(eta, np.float64), (members,))
        jobs = [
            functools.partial(
                _member,
                [w[i] for w in weights],
                [b[i] for b in biases],
                self.csr,
                self.y,
                order[i],
                batch,
                float(eta[i]),
            )  # fmt: skip
            for i in range(members)
        ]
        if members == 1:
            done = [jobs[0]()]
        else:
            with ThreadPoolExecutor(min(members, os.cpu_count() or 1)) as pool:
                done = list(pool.map(lambda job: job(), jobs))
        weights = [np.stack([w[l] for w, _ in done]) for l in range(len(weights))]
        biases = [np.stack([b[l] for _, b in done]) for l in range(len(biases))]
        return weights, biases

    def score(self, weights, biases, x, labels):
        """The portable scorer, members split among the cores, one BLAS thread each (OpenBLAS threads spinning
        on a busy 2-core machine made each evaluation 4x slower); each member's count is the same either way."""
        members = weights[0].shape[0]
        parts = np.array_split(np.arange(members), min(members, os.cpu_count() or 1))
        if len(parts) <= 1:
            return super().score(weights, biases, x, labels)
        part = lambda i: count_correct(self.backend, [w[i[0] : i[-1] + 1] for w in weights],
                                       [b[i[0] : i[-1] + 1] for b in biases], x, labels)  # fmt: skip
        with _one_blas_thread(), ThreadPoolExecutor(len(parts)) as pool:
            return np.concatenate(list(pool.map(part, parts)))


def _one_blas_thread():
    """BLAS limited to one thread (threadpoolctl, in the numba extra); without it, as many as it likes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
