"""The numba kernels: each member's epoch as one compiled loop on the CPU, members in parallel threads.

Two loops with the same results bit for bit: ``numba`` runs rows as SIMD vectors
(:mod:`gpunet.kernels._vector_epoch`); ``numba-loop`` (:mod:`gpunet.kernels._numba_epoch`) is the
reference it is checked against, once per process, and what :func:`gpunet.kernels.choose` takes where
the vector code does not compile. Both release the GIL: a stack runs on up to ``os.cpu_count()``
threads, one member each, each member's result as when it runs alone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import one_line, say
from ..maths import clip_floor, weight_decay
from .base import EpochKernel, count_correct

MAX_LAYERS = 64  # numba compiles once per depth, ever slower, failing past ~1,000 (docs/speed.md): deeper is portable
CACHE_LINE = 64  # bytes


def _objective(dtype, cost: str, decay: float):
    """The loops' ``objective``: (cross-entropy?, L2's 1 - ηλ/n, a scratch pair of ``dtype``)."""
    return cost == "cross-entropy", float(decay), np.ones(2, dtype)


def _member(weights, biases, inputs, y, perm, batch: int, eta: float, cost="quadratic", decay=1.0):
    """One network's SGD over ``perm``: its new (weights, biases), as (n_out, n_in) and (n_out, 1) arrays;
    ``cost`` a name of gpunet.maths.COSTS, ``decay`` L2's 1 - ηλ/n (eq. 93)."""
    from ._numba_epoch import _epoch

    dtype = weights[0].dtype
    wts = tuple(np.ascontiguousarray(w.T) for w in weights)  # wᵀ: the loop adds whole rows of it
    bs = tuple(np.ascontiguousarray(b[:, 0]) for b in biases)
    m = max(1, min(batch, len(perm)))
    acts = tuple(np.empty((m, w.shape[0]), dtype) for w in weights)
    deltas = tuple(np.empty_like(a) for a in acts)
    eta_over = (eta / np.arange(1, m + 1)).astype(dtype)
    perm, lowest, one = np.ascontiguousarray(perm, np.int64), dtype.type(clip_floor(np.finfo(dtype))), dtype.type(1)
    _epoch(wts, bs, acts, deltas, *inputs, y, perm, batch, eta_over, lowest, one, _objective(dtype, cost, decay))
    return [w.T for w in wts], [b[:, None] for b in bs]


class Compiling:
    """Listens to numba's ``numba:compile`` events, sent only when a function is compiled, not when numba's cache
    has it: the first says once that the CPU kernel is being compiled; ``seconds`` sums the outermost ones."""

    said = listening = False
    seconds = 0.0
    depth, started = 0, 0.0

    @classmethod
    def listen(cls) -> None:
        from numba.core import event

        if cls.listening:
            return
        cls.listening = True

        class Listener(event.Listener):
            def on_start(self, _):
                if cls.depth == 0:
                    cls.started = time.perf_counter()
                    if not cls.said:
                        cls.said = True
                        say(COMPILING)
                cls.depth += 1

            def on_end(self, _):
                cls.depth -= 1
                if cls.depth == 0:
                    cls.seconds += time.perf_counter() - cls.started

        event.register("numba:compile", Listener())


COMPILING = (
    "compiling the CPU kernel for this machine: once, numba keeps it for later runs (about half a minute on 2 cores)"
)


def compile_seconds() -> float:
    """Seconds this process spent compiling the numba kernels (0 where numba's cache had them)."""
    return Compiling.seconds


@functools.cache
def _detect() -> str | None:
    """Import numba and compile a tiny epoch, once: why the kernel cannot run here, or None."""
    try:
        _import_noting_settings(f"{__package__}._numba_epoch")
    except Exception as e:  # noqa: BLE001 - a broken install fails in many ways
        if isinstance(e, ImportError) and e.name == "numba":
            return "numba is not installed (pip install 'gpunet[numba]')"
        return f"numba failed to import ({one_line(e)}); reinstall or uninstall it"
    Compiling.listen()
    try:
        x = np.array([[0.0, 1.0], [1.0, 0.0]])
        _member([np.zeros((2, 2))], [np.zeros((2, 1))], _csr(x), x, np.array([1, 0]), 1, 1.0)
    except Exception as e:  # noqa: BLE001
        return f"numba failed to compile the epoch ({one_line(e)}); reinstall or uninstall it"
    return None


_UNREAD = re.compile(r"Environment variable '(\w+)' is defined but its associated value '(.*)' could not be parsed")


def _import_noting_settings(module: str) -> None:
    """Imports ``module`` (and numba with it); numba's warning for a ``NUMBA_*`` variable it cannot read, and
    so leaves at its default (``NUMBA_NUM_THREADS=abc``), is said as one note instead of a traceback.

    numba loads SciPy's BLAS, where SciPy is installed, at its first compilation (for ``np.dot`` in compiled
    code, which gpunet's loops never call): a second OpenBLAS, whose threads, where the address space is
    capped (``ulimit -v``), cannot start, and OpenBLAS then sends itself SIGINT, read as Ctrl-C. It is loaded
    here, with one thread: none to start."""
    unset = "OPENBLAS_NUM_THREADS" not in os.environ  # read once, as each OpenBLAS loads: NumPy's has already
    if unset:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importlib.import_module(module)
            with contextlib.suppress(ImportError):
                importlib.import_module("scipy.linalg.cython_blas")
    finally:
        if unset:
            del os.environ["OPENBLAS_NUM_THREADS"]
    for w in caught:
        unread = _UNREAD.match(str(w.message))
        if unread is None:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        why = str(w.message).strip().splitlines()[-1]
        say(f"numba ignores {unread[1]}={unread[2]!r} and uses its default ({why}); unset it or give one it reads")


def _csr(x: np.ndarray):
    """The inputs in compressed-row form: (indptr, indices, values) of the non-zero pixels of each row."""
    rows, cols = np.nonzero(x)  # row-major order: the non-zero pixels of each input in turn
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=x.shape[0])))).astype(np.int64)
    return indptr, cols.astype(np.int64), np.ascontiguousarray(x[rows, cols])


class NumbaLoopEpoch(EpochKernel):
    """Compiled whole epochs on NumPy arrays, skipping zero pixels; CPU only. The reference loop."""

    name = "numba-loop"

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
        self.inputs = self.prepare(np.asarray(x))
        self.y = np.ascontiguousarray(y)

    prepare = staticmethod(_csr)  # the inputs as ``member`` reads them
    member = staticmethod(_member)  # one network's epoch

    def __call__(self, weights, biases, order, batch, eta, cost="quadratic", lmbda=0.0):
        members = order.shape[0]
        eta = np.broadcast_to(np.asarray(eta, np.float64), (members,))
        decay = weight_decay(eta, np.broadcast_to(np.asarray(lmbda, np.float64), (members,)), self.y.shape[0])

        def job(i):
            params = [w[i] for w in weights], [b[i] for b in biases]
            return self.member(*params, self.inputs, self.y, order[i], batch, float(eta[i]), cost, float(decay[i]))

        if members == 1:
            done = [job(0)]
        else:
            with ThreadPoolExecutor(min(members, os.cpu_count() or 1)) as pool:
                done = list(pool.map(job, range(members)))
        weights = [np.stack([w[l] for w, _ in done]) for l in range(len(weights))]
        biases = [np.stack([b[l] for _, b in done]) for l in range(len(biases))]
        return weights, biases

    def score(self, weights, biases, x, labels):
        """The portable scorer's counts, members split among the cores, one BLAS thread each (docs/speed.md)."""
        members = weights[0].shape[0]
        parts = np.array_split(np.arange(members), min(members, os.cpu_count() or 1))
        if len(parts) <= 1:
            return super().score(weights, biases, x, labels)
        part = lambda i: count_correct(
            self.backend, [w[i[0] : i[-1] + 1] for w in weights], [b[i[0] : i[-1] + 1] for b in biases], x, labels
        )
        with _one_blas_thread(), ThreadPoolExecutor(len(parts)) as pool:
            return np.concatenate(list(pool.map(part, parts)))


def _one_blas_thread():
    """BLAS limited to one thread (threadpoolctl, in the numba extra); without it, as many as it likes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _zeros(shape, dtype) -> np.ndarray:
    """C-contiguous zeros starting on a cache line, so that no vector of a padded row straddles two (one
    that does slows the epoch, docs/speed.md)."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    raw = np.zeros(size + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start : start + size].view(dtype).reshape(shape)


def _in_zeros(a: np.ndarray, shape) -> np.ndarray:
    """``a`` in the corner of :func:`_zeros` of ``shape``: a row padded to whole vectors."""
    out = _zeros(shape, a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _vector_member(weights, biases, inputs, y, perm, batch: int, eta: float, cost="quadratic", decay=1.0):
    """As :func:`_member`, with the vector loop: rows padded to whole vectors, and a copy of w beside wᵀ."""
    from ._simd import lanes
    from ._vector_epoch import _epoch

    dtype = weights[0].dtype
    lane = lanes(dtype)
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    pad = [-(-n // lane) * lane for n in sizes]  # whole vectors
    wts = [_in_zeros(w.T, (n, p)) for w, n, p in zip(weights, sizes, pad[1:])]
    ws = [_in_zeros(w, (w.shape[0], p)) for w, p in zip(weights, pad)]  # w beside wᵀ, for BP2
    ws[0] = np.zeros((0, 0), dtype)  # BP2 never reads the first layer's
    bs = [_in_zeros(b[:, 0], (p,)) for b, p in zip(biases, pad[1:])]
    m = max(1, min(batch, len(perm)))
    acts = tuple(_zeros((m, p), dtype) for p in pad[1:])
    deltas = tuple(_zeros((m, p), dtype) for p in pad[1:])
    eta_over = (eta / np.arange(1, m + 1)).astype(dtype)
    perm, lowest, one = np.ascontiguousarray(perm, np.int64), dtype.type(clip_floor(np.finfo(dtype))), dtype.type(1)
    net = (tuple(wts), tuple(ws), tuple(bs), acts, deltas, np.array(sizes, np.int64))
    scratch = (np.empty(sizes[0], np.int64), np.empty(sizes[0], dtype))  # the offsets and values of a row
    _epoch(net, inputs, y, perm, batch, eta_over, lowest, one, lane, scratch, _objective(dtype, cost, decay))
    return [wt[:, :n].T for wt, n in zip(wts, sizes[1:])], [b[:n, None] for b, n in zip(bs, sizes[1:])]


def _compact(x: np.ndarray):
    """The inputs as the vector loop reads them: (indptr, columns, pixels, table).

    Compact where exact: with at most 256 distinct non-zero values (MNIST's k / 255), each pixel is a byte
    index into ``table`` and its column a uint16; otherwise the values themselves, and an empty table.
    """
    indptr, columns, values = _csr(x)
    table = np.unique(values)
    if len(table) <= 256 and x.shape[1] <= 2**16:
        index = np.searchsorted(table, values)
        if table[index].tobytes() == values.tobytes():  # bit for bit, whatever np.unique did with NaN
            return indptr, columns.astype(np.uint16), index.astype(np.uint8), table
    return indptr, columns, values, values[:0]


@functools.cache
def _detect_vector() -> str | None:
    """Compile the vector loop once and check it against the plain loop: why it cannot run here, or None."""
    why = _detect()
    if why:
        return why
    try:
        importlib.import_module(f"{__package__}._vector_epoch")
        rng = np.random.default_rng(0)
        x = np.where(rng.random((7, 5)) < 0.5, rng.random((7, 5)), 0.0)
        y = np.eye(3)[rng.integers(0, 3, 7)]
        weights = [rng.standard_normal((4, 5)), rng.standard_normal((3, 4))]
        biases = [rng.standard_normal((4, 1)), rng.standard_normal((3, 1))]
        perm = rng.permutation(7)
        runs = []
        for objective in (("quadratic", 1.0), ("cross-entropy", 0.9)):  # chapter 1's, and chapter 3's with L2
            params = [w.copy() for w in weights], [b.copy() for b in biases]
            want = _member(*params, _csr(x), y, perm, 3, 3.0, *objective)
            runs.append((_vector_member(weights, biases, _compact(x), y, perm, 3, 3.0, *objective), want))
    except Exception as e:  # noqa: BLE001 - an older numba or llvmlite, or a CPU LLVM cannot target
        return f"numba failed to compile the vector loop ({one_line(e)}); --kernel numba-loop runs the plain one"
    if not all(np.array_equal(g, w) for got, want in runs for g, w in zip(got[0] + got[1], want[0] + want[1])):
        return "the vector loop's results differ from the plain loop's here; --kernel numba-loop runs the plain one"
    return None


class NumbaEpoch(NumbaLoopEpoch):
    """:class:`NumbaLoopEpoch`'s results, bit for bit, from SIMD rows and compact inputs: the fast CPU kernel."""

    name = "numba"

    @classmethod
    def unusable(cls):
        return _detect_vector()

    prepare = staticmethod(_compact)
    member = staticmethod(_vector_member)
