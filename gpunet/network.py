"""The book's ``Network`` (chapter 1, ``network.py``), in matrix form over the mini-batch.

The equations are the pure functions of :mod:`gpunet.maths`; this class keeps the
book's names and state (``sizes``, ``biases``, ``weights``, ``SGD``, ``evaluate``) and
runs its epochs in the epoch kernel that :mod:`gpunet.kernels` chooses.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .backend import Backend
from .book import pairs as book_data
from .errors import ConfigError
from .kernels import choose, device_for
from .maths import backprop, cost_derivative, feedforward, mini_batch, sgd_step
from .settings import EPOCHS, POSITIVE_INT, POSITIVE_REAL, check, check_eta_fits, check_sizes


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    correct: int | None  # None when there is no evaluation data
    total: int
    seconds: float  # training time of the epoch (shuffle and updates)
    eval_seconds: float

    def __str__(self) -> str:  # the book's line, then the accuracy and the times
        if self.correct is None:
            return f"Epoch {self.epoch} complete ({self.seconds:.2f} s)"
        accuracy = self.correct / self.total if self.total else 0.0
        return (
            f"Epoch {self.epoch}: {self.correct} / {self.total} ({accuracy:.2%}) | "
            f"train {self.seconds:.2f} s, eval {self.eval_seconds:.2f} s"
        )


class Network:
    """The book's ``Network``, with the same names, on any array backend."""

    def __init__(self, sizes: Sequence[int], seed=None, device: str | Backend = "auto", dtype: str = "float32"):
        sizes = check_sizes(sizes)
        if dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
        if isinstance(device, Backend):
            self.backend = device
        else:  # auto: the GPU only where its kernel beats the CPU's (for the book's mini-batch of 10)
            self.backend = device_for(device, sizes, dtype, 10)
        self.xp = self.backend.xp
        self.dtype = self.backend.dtype(dtype)
        self.num_layers = len(sizes)
        self.sizes = sizes
        n = sum(x * y + y for x, y in zip(sizes[:-1], sizes[1:]))  # weights and biases, drawn in float64 first
        self.backend.check_memory(n * np.dtype(dtype).itemsize, f"sizes {sizes} ({n:,} parameters)", host=8 * n)
        # One host generator drives the initial parameters, N(0, 1) in the book's order, and
        # every epoch's shuffle: a seed gives the same starting point and the same order of
        # examples on every device. It does not give bit-identical weights after an epoch:
        # devices sum in different orders, and SGD amplifies those last-bit differences.
        self.rng = np.random.default_rng(seed)
        biases = [self.rng.standard_normal((y, 1)) for y in sizes[1:]]
        weights = [self.rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
        self.biases = [self.backend.asarray(b, dtype=self.dtype) for b in biases]
        self.weights = [self.backend.asarray(w, dtype=self.dtype) for w in weights]
        self.epoch = 0  # epochs of SGD completed
        self.record: dict = {}  # what save() stored beside the parameters (settings, manifest); see load()

    def save(self, path, **record) -> None:
        """Write sizes, dtype, parameters, epoch and the generator's state to ``path`` (.npz), atomically.

        ``record`` (JSON-serialisable: training settings, a run manifest) is stored alongside.
        """
        from .io.model_files import save_network

        save_network(self, path, record)

    @classmethod
    def load(cls, path, device: str | Backend = "auto") -> Network:
        """A network saved by :meth:`save`, on any device; ``.record`` holds what was stored with it."""
        from .io.model_files import read_model

        model = read_model(path)
        net = cls(model.sizes, seed=0, device=device, dtype=model.dtype)
        net.weights = [net.backend.asarray(w) for w in model.weights]
        net.biases = [net.backend.asarray(b) for b in model.biases]
        net.epoch, net.rng, net.record = model.epoch, model.rng, model.record
        return net

    def feedforward(self, a):
        """Output for input columns ``a`` of shape (sizes[0], m)."""
        return feedforward(self.weights, self.biases, a)

    def backprop(self, x, y):
        """(nabla_b, nabla_w) of the quadratic cost, summed over the columns of x and y."""
        return backprop(self.weights, self.biases, x, y)

    def cost_derivative(self, output_activations, y):
        return cost_derivative(output_activations, y)

    def update_mini_batch(self, x, y, eta: float):
        """Apply one gradient-descent step for a mini-batch given as rows: x (m, n_in), y (m, n_out)."""
        t = self.xp.matrix_transpose
        self.weights, self.biases = sgd_step(self.weights, self.biases, t(x), t(y), eta)

    def SGD(
        self,
        training_data,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data=None,
        callback: Callable[[EpochResult], None] | None = print,
        kernel: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[EpochResult]:
        """Train by mini-batch stochastic gradient descent.

        ``training_data`` is ``(x, y)``: inputs as rows ``(n, sizes[0])`` and one-hot
        targets ``(n, sizes[-1])``; ``test_data`` is ``(x, labels)``. The book's lists (or zip
        iterators) of ``(x, y)`` column pairs are taken too, turned into these arrays once. Arrays already on
        the device stay there; each epoch sends only the shuffle permutation to the
        device and reads back only the number of correct test answers. The epochs run
        in an epoch kernel (:mod:`gpunet.kernels`): ``kernel`` names one, None lets the
        registry choose; all compute the same updates in the same order. A mini-batch
        larger than the training set is the whole set, as the book's slicing makes it.
        Epochs are numbered on from ``self.epoch``; ``progress(k)`` is told as each
        k more examples are done.
        """
        epochs, mini_batch_size, eta = _check_training(epochs, mini_batch_size, eta)
        training_data, test_data = book_data.arrays(training_data, test_data, self.sizes)  # the book's (x, y) pairs
        xp = self.xp
        dtype = "float64" if xp.finfo(self.dtype).bits == 64 else "float32"
        check_eta_fits(eta, dtype)
        x, y = (self.backend.asarray(a, dtype=self.dtype) for a in training_data)
        n = x.shape[0]
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != self.sizes[0] or y.shape != (n, self.sizes[-1]):
            raise ConfigError(
                f"training data must be inputs (n, {self.sizes[0]}) and one-hot targets (n, {self.sizes[-1]}) "
                f"for sizes {self.sizes}, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        batch = mini_batch(mini_batch_size, n)
        chosen, self.kernel_reason = choose(self.backend, self.sizes, dtype, batch, kernel)
        self.kernel = chosen.name
        run = chosen(self.backend, x, y)
        eta_host = np.asarray([eta], np.float64)
        stacked = lambda arrays: [xp.expand_dims(a, axis=0) for a in arrays]  # a stack of one member
        # Compile (a call with no examples) before the clock starts.
        run(stacked(self.weights), stacked(self.biases), np.empty((1, 0), np.int64), batch, eta_host)
        # Whole mini-batches per call: one call an epoch, or ~50 when progress is shown.
        step = max(n, 1) if progress is None else max(1, n // 50 // batch) * batch
        results = []
        for _ in range(epochs):
            start = time.perf_counter()
            order = self.rng.permutation(n)[None, :]
            with warnings.catch_warnings():  # an overflow shows as non-finite parameters, said once below
                warnings.simplefilter("ignore", RuntimeWarning)
                for k in range(0, n, step):
                    part = order[:, k : k + step]
                    weights, biases = run(stacked(self.weights), stacked(self.biases), part, batch, eta_host)
                    self.weights, self.biases = [w[0, ...] for w in weights], [b[0, ...] for b in biases]
                    if progress is not None:
                        progress(part.shape[1])
                self.backend.synchronize()
                trained = time.perf_counter()
                finite = xp.astype(self._finite(), xp.int64)  # 1 or 0, on the device
                if test_data is not None:  # one read: the count of correct answers, or -1 if not finite
                    correct = int(
                        run.score(stacked(self.weights), stacked(self.biases), *test_data)[0] * finite + (finite - 1)
                    )
                    ok = correct >= 0
                else:
                    correct, ok = None, bool(finite == 1)
            if not ok:
                raise ConfigError(
                    f"the parameters overflowed to inf or NaN in epoch {self.epoch} (eta {eta:g}, {dtype}); "
                    "train with a smaller eta (the last complete epoch is what was kept)"
                )
            total = test_data[0].shape[0] if test_data is not None else 0
            result = EpochResult(self.epoch, correct, total, trained - start, time.perf_counter() - trained)
            self.epoch += 1
            results.append(result)
            if callback is not None:
                callback(result)
        return results

    def _finite(self):
        """Every weight and bias finite, as a 0-d array left on the device."""
        xp = self.xp
        return functools.reduce(xp.logical_and, [xp.all(xp.isfinite(p)) for p in (*self.weights, *self.biases)])

    def evaluate(self, test_data) -> int:
        """Number of inputs whose most active output neuron is the right label."""
        return int(self.correct(book_data.test_arrays(test_data, self.sizes)))

    def correct(self, test_data):
        """What :meth:`evaluate` counts, as a 0-d array left on the device (reading it waits for the device)."""
        xp = self.xp
        x, labels = test_data
        hits = self.predict(x) == xp.astype(self.backend.asarray(labels), xp.int64)
        return xp.sum(xp.astype(hits, xp.int64))

    def outputs(self, x, chunk: int = 10_000):
        """Output activations for inputs given as rows (n, sizes[0]), as rows (n, sizes[-1])."""
        xp = self.xp
        x = self.backend.asarray(x, dtype=self.dtype)
        n = x.shape[0]
        parts = [self.feedforward(xp.matrix_transpose(x[k : min(k + chunk, n), ...])) for k in range(0, n, chunk)]
        if not parts:
            return xp.zeros((0, self.sizes[-1]), dtype=self.dtype, device=self.backend.device)
        return xp.matrix_transpose(xp.concat(parts, axis=-1))

    def predict(self, x):
        """The most active output neuron for each input row: the network's answer."""
        return self.xp.argmax(self.outputs(x), axis=-1)

    def total_cost(self, data) -> float:
        """Mean quadratic cost over (x, one-hot y): C = 1/(2n) Σ_x ‖y(x) - a^L(x)‖² (eq. 6)."""
        x, y = data
        diff = self.outputs(x) - self.backend.asarray(y, dtype=self.dtype)
        return float(self.xp.sum(diff * diff)) / (2 * x.shape[0])


def _check_training(epochs, mini_batch_size, eta) -> tuple[int, int, float]:
    return (
        check("epochs", epochs, EPOCHS),
        check("mini-batch size", mini_batch_size, POSITIVE_INT),
        check("eta (the learning rate)", eta, POSITIVE_REAL),
    )
