"""``gpunet bench``: seconds per epoch of every path on every device, against the book's loop, in one run."""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np

from .backend import Backend, get_backend
from .data import pin
from .network import Network
from .reference import Network as BookNetwork

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
    """Seconds per epoch of the book's per-example code (float64), timed on ``examples`` examples."""
    rng = np.random.default_rng(seed)
    book = BookNetwork(sizes)  # the book's own N(0, 1) start: the loop's speed does not depend on it
    images, labels = host.train
    n = len(labels)
    order = rng.permutation(n)[:examples]
    targets = np.eye(sizes[-1])
    data = [(images[i, :, None] / 255.0, targets[labels[i], :, None]) for i in order]
    start = time.perf_counter()
    book.SGD(data, 1, batch, 3.0, [np.arange(len(data))])
    return (time.perf_counter() - start) * n / len(data)


def time_network(host, backend, sizes, batch, dtype, fused, epochs, seed=0):
    """(seconds of each epoch, bytes moved host->device per epoch) for one path."""
    metered = _Metered(**{f.name: getattr(backend, f.name) for f in dataclasses.fields(Backend)})
    net = Network(sizes, seed=seed, device=metered, dtype=dtype)
    data = pin(host, metered, net.dtype)
    metered.moved[0] = 0
    results = net.SGD(data.training_data, epochs, batch, 3.0, callback=None, fused=fused)
    return [r.seconds for r in results], metered.moved[0] // max(epochs, 1)


def run(host, devices, configs, dtype, epochs, book_examples, report=print):
    """Measure every configuration on ``host`` data; ``report`` receives each row (a dict) once measured."""
    n = len(host.train[1])
    backends = [get_backend(d) for d in devices]
    rows = []
    for sizes, batch in configs:
        book = time_book(host, sizes, batch, book_examples) if book_examples else None
        flops = flops_per_example(sizes) * n
        if book is not None:
            rows.append(_row(sizes, batch, "cpu", "book loop", "float64", [book], 0, flops, book))
            report(rows[-1])
        for backend in backends:
            paths = [("portable", False)] + ([(f"fused ({backend.fused})", True)] if backend.fused else [])
            for name, fused in paths:
                seconds, moved = time_network(host, backend, sizes, batch, dtype, fused, epochs)
                rows.append(_row(sizes, batch, backend.name, name, dtype, seconds, moved, flops, book))
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
    }


HEADER = (
    f"{'sizes':<14} {'batch':>5}  {'device':<7} {'path':<14} {'dtype':<7} {'s/epoch min':>11} {'median':>7} "
    f"{'examples/s':>10} {'GFLOP/s':>7} {'H2D B/epoch':>11} {'vs book':>7}"
)


def format_row(r) -> str:
    ratio = "" if r["vs_book"] is None else f"{r['vs_book']:.1f}x"
    sizes = ",".join(map(str, r["sizes"]))
    return (
        f"{sizes:<14} {r['batch_size']:>5}  {r['device']:<7} {r['path']:<14} {r['dtype']:<7} "
        f"{r['s_per_epoch_min']:>11.3f} {r['s_per_epoch_median']:>7.3f} {r['examples_per_s']:>10,.0f} "
        f"{r['gflop_per_s']:>7.2f} {r['h2d_bytes_per_epoch']:>11,} {ratio:>7}"
    )
