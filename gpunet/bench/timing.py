"""``gpunet bench``: seconds per epoch of every kernel on every device, against the book's loop and the
peers a reader would pick instead (:mod:`gpunet.bench.peers`), in one run."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..backend import Backend, BackendError, get_backend
from ..book.reference import Network as BookNetwork
from ..data import pin
from ..errors import one_line
from ..kernels import KERNELS, device_kind
from ..network import Network, check_memory
from ..settings import BOOK
from . import peers

BOOK_CONFIGS = [([784, 30, 10], 10), ([784, 30, 10], 100), ([784, 100, 10], 10)]


@dataclasses.dataclass(frozen=True)
class _Metered(Backend):
    """A backend that counts the bytes it copies from NumPy arrays into another library's arrays."""

    moved: list = dataclasses.field(default_factory=lambda: [0])

    def asarray(self, host, dtype=None):
        array = super().asarray(host, dtype=dtype)
        if isinstance(host, np.ndarray) and not isinstance(array, np.ndarray):  # on the CPU, nothing moves
            self.moved[0] += host.nbytes
        return array


def flops_per_example(sizes) -> int:
    """Dense multiply-adds x 2 of one SGD example: z = w a (eq. 22), BP2 below the output, BP4."""
    weights = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return 2 * (2 * sum(weights) + sum(weights[1:]))


def time_book(host, sizes, batch, examples, seed=0):
    """Seconds per epoch of the book's per-example code as written (float64), timed on ``examples`` examples."""
    rng = np.random.default_rng(seed)
    book = BookNetwork(sizes)  # the book's own N(0, 1) start: the loop's speed does not depend on it
    images, labels = host.train
    n = len(labels)
    order = rng.permutation(n)[:examples]
    targets = np.eye(sizes[-1])
    data = [(images[i, :, None] / 255.0, targets[labels[i], :, None]) for i in order]
    with warnings.catch_warnings():  # once around the run: the book's sigmoid may warn of e^(-z) -> inf
        warnings.simplefilter("ignore", RuntimeWarning)
        start = time.perf_counter()
        book.SGD(data, 1, batch, BOOK.eta, [np.arange(len(data))])
        seconds = time.perf_counter() - start
    return seconds * n / len(data)


def time_network(host, backend, sizes, batch, dtype, kernel, epochs, seed=0, cost="quadratic", lmbda=0.0):
    """(seconds of each epoch, bytes moved host->device per epoch) for one kernel, training with ``cost`` and L2's
    ``lmbda`` (chapter 3; the default chapter 1's)."""
    metered = _Metered(**{f.name: getattr(backend, f.name) for f in dataclasses.fields(Backend)})
    net = Network(sizes, seed=seed, device=metered, dtype=dtype, cost=cost)
    data = pin(host, metered, net.dtype, sizes[-1])  # targets as wide as the output layer, as train pins them
    metered.moved[0] = 0
    results = net.SGD(data.training_data, epochs, batch, BOOK.eta, lmbda=lmbda, callback=None, kernel=kernel)
    return [r.seconds for r in results], metered.moved[0] // max(epochs, 1)


def time_peer(host, name, device_kind, sizes, batch, dtype, epochs, seed=0):
    """Seconds of each epoch of a peer, from the start and in the order ``Network(sizes, seed)`` would take."""
    cpu = get_backend("cpu")
    net = Network(sizes, seed=seed, device=cpu, dtype=dtype)
    x, y = pin(host, cpu, net.dtype, sizes[-1]).training_data
    orders = [net.rng.permutation(len(x)) for _ in range(epochs)]
    return peers.run(name, device_kind, x, y, net.weights, net.biases, orders, min(batch, len(x)), BOOK.eta, dtype)


PEERS_APART = True  # each peer in a fresh process (tests of the bench itself may set False)


def _peer_process(*args):
    """:func:`time_peer` in a process of its own, so that a peer's thread pools cannot slow the kernels' rows."""
    if not PEERS_APART:
        return time_peer(*args)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(time_peer, *args).result()


def usable(devices, missing=lambda what, why: None) -> list[Backend]:
    """The backends of the ``devices`` that run here, the others passed to ``missing``; none: the first's error."""
    backends, failed = [], []
    for device in devices:
        try:
            backends.append(get_backend(device))
        except BackendError as e:
            failed.append((device, e))
    if failed and not backends:
        raise failed[0][1]
    for device, error in failed:
        missing(device, str(error))
    return backends


CHAPTER_1 = (("quadratic", 0.0),)  # the objectives bench times unless told: chapter 1's


def objective_label(cost: str, lmbda: float) -> str:
    """What a kernel's path gains in the table for chapter 3's objectives: "" (chapter 1's), " ce", " l2=5", ..."""
    return (" ce" if cost == "cross-entropy" else "") + (f" l2={lmbda:g}" if lmbda else "")


def run(
    host,
    backends,
    configs,
    dtype,
    epochs,
    book_examples,
    report=print,
    missing=lambda what, why: None,
    objectives=CHAPTER_1,
):
    """The rows (dicts) of every configuration on ``backends``, each passed to ``report`` once measured.

    Per configuration: the book's loop, each importable peer, then every kernel that can run it, on each
    device, for each (cost, lmbda) of ``objectives`` (the book's loop and the peers: chapter 1's only); one
    that cannot run goes to ``missing(what, why)``. Sizes that do not fit the data or the memory are refused first.
    """
    for sizes, _ in configs:
        host.check_fits(list(sizes))
        for backend in backends or [get_backend("cpu")]:  # the book's loop runs on the CPU
            check_memory(backend, list(sizes), dtype)
    n = len(host.train[1])
    rows = []
    for sizes, batch in configs:
        book = time_book(host, sizes, batch, book_examples) if book_examples else None
        flops = flops_per_example(sizes) * n
        if book is not None:
            rows.append(_row(sizes, batch, "cpu", "book loop", "float64", [book], 0, flops, book))
            report(rows[-1])
        measured = []
        for backend in backends:
            for name in peers.available(device_kind(backend)):
                try:
                    seconds = _peer_process(host, name, device_kind(backend), sizes, batch, dtype, epochs)
                except Exception as e:  # noqa: BLE001 - a peer's own failure must not end the bench
                    missing(f"{name} on {backend.name}", one_line(e))
                    continue
                measured.append(_row(sizes, batch, backend.name, name, dtype, seconds, 0, flops, book))
        best = min((r["s_per_epoch_median"] for r in measured), default=None)
        for row in measured:
            rows.append({**row, "vs_best_peer": best / row["s_per_epoch_median"]})
            report(rows[-1])
        for backend, (cost, lmbda), kernel in itertools.product(backends, objectives, KERNELS.values()):
            if kernel.unsupported(backend, sizes, dtype, min(batch, n)):
                continue  # not for this device or configuration
            path = kernel.name + objective_label(cost, lmbda)
            if kernel.unusable() or kernel.cannot_train(cost, lmbda):
                missing(f"{path} on {backend.name}", kernel.unusable() or kernel.cannot_train(cost, lmbda))
                continue
            seconds, moved = time_network(host, backend, sizes, batch, dtype, kernel.name, epochs, 0, cost, lmbda)
            row = {**_row(sizes, batch, backend.name, path, dtype, seconds, moved, flops, book), "cost": cost}
            row["lmbda"] = lmbda
            rows.append({**row, "vs_best_peer": None if best is None else best / row["s_per_epoch_median"]})
            report(rows[-1])
    return rows


def _row(sizes, batch, device, path, dtype, seconds, moved, flops, book):
    best, median = min(seconds), statistics.median(seconds)
    return {
        "sizes": sizes,
        "batch_size": batch,
        "device": device,
        "path": path,
        "dtype": dtype,
        "s_per_epoch_min": best,
        "s_per_epoch_median": median,
        "examples_per_s": flops / flops_per_example(sizes) / median,
        "gflop_per_s": flops / median / 1e9,
        "h2d_bytes_per_epoch": moved,
        "vs_book": None if book is None else book / median,
        "vs_best_peer": None,
    }


HEADER = (
    f"{'sizes':<14} {'batch':>5}  {'device':<7} {'path':<14} {'dtype':<7} {'s/epoch min':>11} {'median':>7} "
    f"{'examples/s':>10} {'GFLOP/s':>7} {'H2D B/epoch':>11} {'vs book':>7} {'vs peer':>7}"
)


def format_row(r) -> str:
    ratio = "" if r["vs_book"] is None else f"{r['vs_book']:.1f}x"
    peer = "" if r["vs_best_peer"] is None else f"{r['vs_best_peer']:.2f}x"
    sizes = ",".join(map(str, r["sizes"]))
    return (
        f"{sizes:<14} {r['batch_size']:>5}  {r['device']:<7} {r['path']:<14} {r['dtype']:<7} "
        f"{r['s_per_epoch_min']:>11.3f} {r['s_per_epoch_median']:>7.3f} {r['examples_per_s']:>10,.0f} "
        f"{r['gflop_per_s']:>7.2f} {r['h2d_bytes_per_epoch']:>11,} {ratio:>7} {peer:>7}"
    )
