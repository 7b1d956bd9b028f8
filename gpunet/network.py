"""The book's network (chapter 1, ``network.py``) in matrix form over the mini-batch.

The maths are pure functions of the parameters. Activations are columns, as in
the book: ``a`` has shape ``(..., n, m)`` for ``m`` examples, ``w`` is
``(..., n_out, n_in)`` with ``w[j, k]`` joining neuron ``k`` of one layer to
neuron ``j`` of the next, and ``b`` is ``(..., n_out, 1)``; leading axes
broadcast, so several networks can be stacked. Only functions of the Python
array API standard are called, on the namespace of the arrays passed in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace

from . import book_data
from .backend import Backend
from .errors import ConfigError
from .validation import COUNT, POSITIVE_INT, POSITIVE_REAL, check, check_sizes


def sigmoid(xp, z):
    """σ(z) = 1 / (1 + e^(-z)) (eq. 3); z is clipped from below so e^(-z) cannot overflow."""
    lowest = -math.floor(math.log(xp.finfo(z.dtype).max))
    return 1.0 / (1.0 + xp.exp(-xp.clip(z, min=lowest)))


def sigmoid_prime_of(a):
    """σ'(z) = σ(z)(1 - σ(z)), written in terms of the activation a = σ(z)."""
    return a * (1.0 - a)


def cost_derivative(output_activations, y):
    """∂C_x/∂a for the quadratic cost C_x = ½‖y - a^L‖² (eq. 6)."""
    return output_activations - y


def feedforward(weights, biases, a):
    """The network's output for input columns ``a``: a' = σ(w a + b) (eq. 22)."""
    xp = array_namespace(a)
    for w, b in zip(weights, biases):
        a = sigmoid(xp, w @ a + b)
    return a


def backprop(weights, biases, x, y):
    """Gradients of the quadratic cost summed over the columns of ``x``: (nabla_b, nabla_w).

    The book's ``backprop`` handles one example; here every column of ``x`` and
    ``y`` is an example, and each of BP1-BP4 is one array expression.
    """
    xp = array_namespace(x)
    activations = [x]  # a^1 = x, then a^l = σ(z^l), z^l = w^l a^(l-1) + b^l
    for w, b in zip(weights, biases):
        activations.append(sigmoid(xp, w @ activations[-1] + b))
    nabla_b = [None] * len(biases)
    nabla_w = [None] * len(weights)
    # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
    delta = cost_derivative(activations[-1], y) * sigmoid_prime_of(activations[-1])
    for l in range(1, len(weights) + 1):  # the book's l counts back from the output
        if l > 1:
            # BP2: δ^l = ((w^(l+1))^T δ^(l+1)) ⊙ σ'(z^l)
            delta = (xp.matrix_transpose(weights[-l + 1]) @ delta) * sigmoid_prime_of(activations[-l])
        # BP3: ∂C/∂b^l = δ^l, summed over the mini-batch
        nabla_b[-l] = xp.sum(delta, axis=-1, keepdims=True)
        # BP4: ∂C/∂w^l_jk = a^(l-1)_k δ^l_j, summed over the mini-batch: δ^l (a^(l-1))^T
        nabla_w[-l] = delta @ xp.matrix_transpose(activations[-l - 1])
    return nabla_b, nabla_w


def sgd_step(weights, biases, x, y, eta):
    """One step of gradient descent on a mini-batch of columns (eqs. 20-21)."""
    nabla_b, nabla_w = backprop(weights, biases, x, y)
    scale = eta / x.shape[-1]
    weights = [w - scale * nw for w, nw in zip(weights, nabla_w)]
    biases = [b - scale * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def mini_batch(size: int, n: int) -> int:
    """The mini-batch size SGD uses on n examples: at most the whole set, as the book's slicing makes it."""
    return min(size, max(n, 1))


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    correct: int | None  # None when there is no evaluation data
    total: int
    seconds: float  # training time of the epoch (shuffle and updates)
    eval_seconds: float

    def __str__(self) -> str:  # the book's line, then the time
        if self.correct is None:
            return f"Epoch {self.epoch} complete ({self.seconds:.2f} s)"
        return f"Epoch {self.epoch}: {self.correct} / {self.total} ({self.seconds:.2f} s)"


class Network:
    """The book's ``Network``, with the same names, on any array backend."""

    def __init__(self, sizes: Sequence[int], seed=None, device: str | Backend = "auto", dtype: str = "float32"):
        sizes = check_sizes(sizes)
        if dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
        if isinstance(device, Backend):
            self.backend = device
        else:  # auto: the GPU only where its kernel beats the CPU's (for the book's mini-batch of 10)
            from .kernels import device_for

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
        from .model_files import save_network

        save_network(self, path, record)

    @classmethod
    def load(cls, path, device: str | Backend = "auto") -> Network:
        """A network saved by :meth:`save`, on any device; ``.record`` holds what was stored with it."""
        from .model_files import load_network

        return load_network(cls, path, device)

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
        from .kernels import choose

        epochs, mini_batch_size, eta = _check_training(epochs, mini_batch_size, eta)
        training_data, test_data = book_data.arrays(training_data, test_data, self.sizes)  # the book's (x, y) pairs
        xp = self.xp
        x, y = (self.backend.asarray(a, dtype=self.dtype) for a in training_data)
        n = x.shape[0]
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != self.sizes[0] or y.shape != (n, self.sizes[-1]):
            raise ConfigError(
                f"training data must be inputs (n, {self.sizes[0]}) and one-hot targets (n, {self.sizes[-1]}) "
                f"for sizes {self.sizes}, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        batch = mini_batch(mini_batch_size, n)
        chosen, self.kernel_reason = choose(
            self.backend, self.sizes, "float64" if xp.finfo(self.dtype).bits == 64 else "float32", batch, kernel
        )
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
            for k in range(0, n, step):
                part = order[:, k : k + step]
                weights, biases = run(stacked(self.weights), stacked(self.biases), part, batch, eta_host)
                self.weights, self.biases = [w[0, ...] for w in weights], [b[0, ...] for b in biases]
                if progress is not None:
                    progress(part.shape[1])
            self.backend.synchronize()
            trained = time.perf_counter()
            correct = self.evaluate(test_data) if test_data is not None else None
            total = test_data[0].shape[0] if test_data is not None else 0
            result = EpochResult(self.epoch, correct, total, trained - start, time.perf_counter() - trained)
            self.epoch += 1
            results.append(result)
            if callback is not None:
                callback(result)
        return results

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
        check("epochs", epochs, COUNT),
        check("mini-batch size", mini_batch_size, POSITIVE_INT),
        check("eta (the learning rate)", eta, POSITIVE_REAL),
    )
