"""The numba kernel: each member's epoch as one compiled loop on the CPU, members in parallel threads.

The loop itself is in :mod:`gpunet.kernels._numba_epoch`. It releases the GIL, so a
stack of N networks runs on up to ``os.cpu_count()`` threads, one member each; every
member's result is the same, bit for bit, as when it runs alone.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import one_line
from .base import EpochKernel

# numba compiles the epoch once per number of layers, in time that grows faster than the depth (2-core EPYC,
# loaded: 32 layers 13 s, 50 layers 37 s, 200 layers 188 s) and fails past about 1,000: deeper networks train
# in the portable kernel.
MAX_LAYERS = 64


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
        if backend.name != "cpu":
            return "runs on the CPU (NumPy arrays) only"
        if len(sizes) - 1 > MAX_LAYERS:
            return f"it compiles a loop per depth, for at most {MAX_LAYERS} layers, not {len(sizes) - 1}"
        return None

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
