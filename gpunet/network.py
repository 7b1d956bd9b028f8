"""The book's ``Network`` (chapter 1, ``network.py``), in matrix form over the mini-batch.

The equations are the pure functions of :mod:`gpunet.maths`; this class keeps the book's names and state (``sizes``,
``biases``, ``weights``, ``SGD``, ``evaluate``) and runs its epochs in the epoch kernel :mod:`gpunet.kernels` chooses.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .backend import Backend
from .book import pairs as book_data
from .book.schedule import Schedule
from .errors import ConfigError
from .kernels import choose, device_for
from .maths import (
    COSTS,
    backprop,
    cost_derivative,
    feedforward,
    initial_parameters,
    l2_term,
    mini_batch,
    parameter_count,
    sgd_step,
    weight_decay,
)
from .settings import COUNT, Settings, check


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    correct: int | None  # None when there is no evaluation data
    total: int
    seconds: float  # training time of the epoch (shuffle and updates)
    eval_seconds: float
    eta: float | None = None  # the epoch's eta where the halving rule may change it (SGD's halve_eta)
    stopped: str = ""  # why the run stops after this epoch (chapter 3's rules), "" if it goes on

    def __str__(self) -> str:  # the book's line, then the accuracy and the times
        eta = "" if self.eta is None else f" | eta {self.eta:g}"
        if self.correct is None:
            return f"Epoch {self.epoch} complete ({self.seconds:.2f} s){eta}"
        times = f"train {self.seconds:.2f} s, eval {self.eval_seconds:.2f} s"
        return f"Epoch {self.epoch}: {self.score()}{eta} | {times}"

    def score(self) -> str:
        """``correct / total (accuracy)``, "" for an epoch not scored (test data is never empty)."""
        return f"{self.correct} / {self.total} ({self.correct / self.total:.2%})" if self.correct is not None else ""


class History(Sequence):
    """What :meth:`Network.SGD` returns: one :class:`EpochResult` per epoch, read as a list is (``len``,
    ``history[-1]``, ``for r in history``), and as NumPy arrays to plot, one value per epoch: ``epoch``,
    ``accuracy`` (a fraction, NaN where no test data scored it) and ``seconds``. ``best`` is the first of the
    best-scored epochs, ``final`` the last epoch (None for no epoch)."""

    def __init__(self, results=()):
        self._results = tuple(results)

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, k):
        return History(self._results[k]) if isinstance(k, slice) else self._results[k]

    @property
    def epoch(self) -> np.ndarray:
        return np.array([r.epoch for r in self], dtype=np.int64)

    @property
    def accuracy(self) -> np.ndarray:
        return np.array([np.nan if r.correct is None else r.correct / r.total for r in self], dtype=np.float64)

    @property
    def seconds(self) -> np.ndarray:
        return np.array([r.seconds for r in self], dtype=np.float64)

    @property
    def best(self) -> EpochResult | None:
        scored = [r for r in self if r.correct is not None]
        return max(scored, key=lambda r: r.correct) if scored else None  # max keeps the first of equals

    @property
    def final(self) -> EpochResult | None:
        return self._results[-1] if self._results else None

    def __repr__(self) -> str:  # one line, as the book's >>> prompt and a notebook cell echo it
        n = f"{len(self)} epoch{'' if len(self) == 1 else 's'}"
        best, final = self.best, self.final
        if best is None or final is None:
            return f"History({n}{', not scored (no test_data)' if len(self) else ''})"
        return f"History({n}, best epoch {best.epoch}: {best.score()}, final {final.score() or 'not scored'})"


class Network:
    """The book's ``Network``, with the same names, on any array backend.

    ``cost`` (a name of :data:`gpunet.maths.COSTS` or one of its classes) and ``init`` (``large``: chapter 1's
    N(0, 1) weights; ``default``: chapter 3's N(0, 1/n_in)) are network2.py's options; the defaults are chapter 1's.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        seed=None,
        device: str | Backend = "auto",
        dtype: str = "float32",
        *,
        cost="quadratic",
        init: str = "large",
    ):
        cost = getattr(cost, "name", cost)  # QuadraticCost, CrossEntropyCost: their names
        s = Settings(sizes=sizes, dtype=dtype, seed=seed, cost=cost, init=init)
        sizes = list(s.sizes)
        if isinstance(device, Backend):
            self.backend = device
        else:  # auto: the GPU only where its kernel beats the CPU's (for the book's mini-batch of 10)
            self.backend = device_for(device, sizes, dtype, 10)
        self.xp = self.backend.xp
        self.dtype, self._dtype_name = self.backend.dtype(dtype), dtype
        self.num_layers = len(sizes)
        self.sizes = sizes
        check_memory(self.backend, sizes, dtype)
        self.cost, self.init, self.lmbda = COSTS[s.cost], s.init, s.lmbda  # lmbda: the last SGD's, kept by save()
        # One host generator drives the initial parameters, in the book's order, and every epoch's shuffle:
        # a seed gives the same starting point and order of examples on every device, not bit-identical weights
        # after an epoch (devices sum in different orders, and SGD amplifies those last-bit differences).
        # Without a seed one is drawn and kept (net.seed), so that Network(sizes, seed=net.seed) repeats the run.
        self.seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
        self.rng = np.random.default_rng(self.seed)
        self.initialize(s.init)
        self.epoch = 0  # epochs of SGD completed
        self.record: dict = {}  # what save() stored beside the parameters (settings, manifest); see load()

    def initialize(self, init: str = "large") -> None:
        """Draws new parameters from the network's generator: ``large`` N(0, 1) weights, ``default`` N(0, 1/n_in)."""
        self.init = init = Settings(init=init).init
        self.schedule = Schedule()  # chapter 3's rules start again with the parameters
        weights, biases = initial_parameters(self.rng, self.sizes, init)
        self.biases = [self.backend.asarray(b, dtype=self.dtype) for b in biases]
        self.weights = [self.backend.asarray(w, dtype=self.dtype) for w in weights]

    def save(self, path, **record) -> None:
        """Write sizes, dtype, parameters, epoch, the generator's state and the objective (cost, init and the last
        SGD's lmbda) to ``path`` (.npz), atomically.

        ``record`` (JSON-serialisable: training settings, a run manifest) is stored alongside.
        """
        from .io.model_files import save_network

        save_network(self, path, record)

    @classmethod
    def load(cls, path, device: str | Backend = "auto") -> Network:
        """A network saved by :meth:`save`, on any device, with its cost, init and lmbda (a file from before
        chapter 3: chapter 1's); ``.record`` holds what was stored with it."""
        from .io.model_files import read_model

        model = read_model(path)
        net = cls(model.sizes, seed=0, device=device, dtype=model.dtype, cost=model.objective["cost"])
        net.init, net.lmbda, net.schedule = model.objective["init"], model.objective["lmbda"], model.schedule
        net.weights = [net.backend.asarray(w) for w in model.weights]
        net.biases = [net.backend.asarray(b) for b in model.biases]
        net.epoch, net.rng, net.record = model.epoch, model.rng, model.record
        settings = model.record.get("settings")  # the run's seed, where the file says it (gpunet train's do)
        net.seed = settings.get("seed") if isinstance(settings, dict) else None
        return net

    def __repr__(self) -> str:
        return (
            f"Network(sizes={self.sizes}, seed={self.seed}, device={self.backend.name!r}, "
            f"dtype={self._dtype_name!r}, epoch={self.epoch})"
        )

    def feedforward(self, a):
        """Output for input columns ``a`` of shape (sizes[0], m)."""
        return feedforward(self.weights, self.biases, a)

    def backprop(self, x, y):
        """(nabla_b, nabla_w) of the network's cost, summed over the columns of x and y."""
        return backprop(self.weights, self.biases, x, y, self.cost)

    def cost_derivative(self, output_activations, y):
        return cost_derivative(output_activations, y)

    def update_mini_batch(self, x, y, eta: float, lmbda: float = 0.0, n: int = 1):
        """Apply one gradient-descent step for a mini-batch given as rows: x (m, n_in), y (m, n_out); L2's
        ``lmbda`` over a training set of ``n`` (eq. 93)."""
        t = self.xp.matrix_transpose
        decay = weight_decay(eta, lmbda, n)
        self.weights, self.biases = sgd_step(self.weights, self.biases, t(x), t(y), eta, self.cost, decay)

    def SGD(
        self,
        training_data,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data=None,
        *,
        lmbda: float = 0.0,
        stop_after: int = 0,
        halve_eta: int = 0,
        callback: Callable[[EpochResult], None] | None = print,
        kernel: str | None = None,
        progress: Callable[[int], None] | bool | None = None,
    ) -> History:
        """Returns the :class:`History` of the epochs of mini-batch SGD, numbered on from ``self.epoch``.

        Data as rows ``(x, y)`` (test: ``(x, labels)``) or the book's lists of column pairs; ``lmbda`` is L2's λ
        (network2.py's, eq. 93). Chapter 3's rules, over the test data's count (:mod:`gpunet.book.schedule`, kept in
        ``self.schedule`` and by :meth:`save`): ``stop_after`` N epochs without a new best ends the run;
        ``halve_eta`` N such epochs halve eta, down to 1/128 of ``eta``, which ends it (0: off). The epochs run
        in the epoch kernel ``kernel`` names (None: the registry chooses); ``callback`` is given each epoch's
        :class:`EpochResult` as it ends; ``progress(k)`` is told of each k examples done (True: a tqdm bar).
        """
        s = Settings(
            sizes=self.sizes, epochs=epochs, batch_size=mini_batch_size, eta=eta, dtype=self._dtype_name, lmbda=lmbda
        )
        self.lmbda = s.lmbda
        stop_after, halve_eta = check("stop_after", stop_after, COUNT), check("halve_eta", halve_eta, COUNT)
        if (stop_after or halve_eta) and test_data is None:
            raise ConfigError("stop_after and halve_eta count epochs without improvement on test_data: give it")
        training_data, test_data = book_data.arrays(training_data, test_data, self.sizes)
        x, y = self._training_arrays(training_data)
        test_data = None if test_data is None else self._test_arrays(test_data)
        n, batch = x.shape[0], mini_batch(s.batch_size, x.shape[0])  # at most the whole set, as the book slices
        run = self._epoch_kernel(x, y, batch, kernel, s.lmbda)
        step = max(n, 1) if not progress else max(1, n // 50 // batch) * batch  # ~50 calls an epoch, or one
        results = []
        for _ in range(s.epochs):
            start = time.perf_counter()
            eta = self.schedule.eta(s.eta) if halve_eta else s.eta
            eta_host = np.asarray([eta], np.float64)
            order = self.rng.permutation(n)[None, :]  # the epoch's shuffle
            with warnings.catch_warnings(), _told(progress, n, self.epoch) as told:  # an overflow: said below
                warnings.simplefilter("ignore", RuntimeWarning)
                for k in range(0, n, step):  # whole mini-batches, each an update_mini_batch step
                    self._update_mini_batches(run, order[:, k : k + step], batch, eta_host, told, s.lmbda)
                self.backend.synchronize()
                trained = time.perf_counter()
                correct = self._score(run, test_data, s)
            total = test_data[0].shape[0] if test_data is not None else 0
            stopped = ""
            if correct is not None and (stop_after or halve_eta):  # scored: test_data is given with them
                stopped = self.schedule.after(correct, stop_after, halve_eta)
            seconds = trained - start, time.perf_counter() - trained
            results.append(EpochResult(self.epoch, correct, total, *seconds, eta if halve_eta else None, stopped))
            self.epoch += 1
            if callback is not None:
                callback(results[-1])
            if stopped:
                break
        return History(results)

    def _training_arrays(self, training_data):
        """Returns the training inputs and targets on the device, refused unless they fit ``sizes``."""
        _refuse_pixels(training_data[0], "training")
        x, y = (self.backend.asarray(a, dtype=self.dtype) for a in training_data)
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != self.sizes[0] or y.shape != (x.shape[0], self.sizes[-1]):
            raise ConfigError(
                f"training data must be inputs (n, {self.sizes[0]}) and one-hot targets (n, {self.sizes[-1]}) "
                f"for sizes {self.sizes}, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return x, y

    def _epoch_kernel(self, x, y, batch: int, kernel: str | None, lmbda: float = 0.0):
        """Returns the chosen epoch kernel bound to the training data, compiled (a call with no examples)."""
        cost = self.cost.name
        chosen, self.kernel_reason = choose(
            self.backend, self.sizes, self._dtype_name, batch, kernel, cost=cost, lmbda=lmbda
        )
        self.kernel = chosen.name
        run = chosen(self.backend, x, y)
        weights, biases, nothing = self._stacked(self.weights), self._stacked(self.biases), np.empty((1, 0), np.int64)
        run(weights, biases, nothing, batch, np.ones(1), cost=cost, lmbda=lmbda)
        return run

    def _update_mini_batches(self, run, order, batch: int, eta_host, progress, lmbda: float = 0.0) -> None:
        """Applies update_mini_batch to each mini-batch of ``order``, in the epoch kernel."""
        weights, biases = self._stacked(self.weights), self._stacked(self.biases)
        weights, biases = run(weights, biases, order, batch, eta_host, cost=self.cost.name, lmbda=lmbda)
        self.weights, self.biases = [w[0, ...] for w in weights], [b[0, ...] for b in biases]
        if progress is not None:
            progress(order.shape[1])

    def _score(self, run, test_data, s: Settings) -> int | None:
        """Returns the count of right test answers (None without test data); refuses non-finite parameters."""
        finite = self._finite()
        if test_data is None:
            correct = None if bool(finite) else -1
        else:  # one read from the device: the count, or -1 when the parameters are not finite
            score = run.score(self._stacked(self.weights), self._stacked(self.biases), *test_data)[0]
            correct = int(self.xp.where(finite, score, -1))
        if correct == -1:
            raise ConfigError(
                f"the parameters overflowed to inf or NaN in epoch {self.epoch} (eta {s.eta:g}, {s.dtype}); "
                "train with a smaller eta (the last complete epoch is what was kept)"
            )
        return correct

    def _stacked(self, arrays):  # a stack of one member, as the epoch kernels take them
        return [self.xp.expand_dims(a, axis=0) for a in arrays]

    def _finite(self):
        """Every weight and bias finite, as a 0-d array left on the device."""
        xp = self.xp
        return functools.reduce(xp.logical_and, [xp.all(xp.isfinite(p)) for p in (*self.weights, *self.biases)])

    def evaluate(self, test_data) -> int:
        """Returns the number of inputs whose most active output neuron is the right label."""
        return int(self.correct(book_data.test_arrays(test_data, self.sizes)))

    def correct(self, test_data):
        """Returns what :meth:`evaluate` counts, as a 0-d array left on the device; refuses labels that are not
        whole numbers below sizes[-1]."""
        xp = self.xp
        x, labels = self._test_arrays(test_data)
        valid = (labels >= 0) & (labels < self.sizes[-1])  # NaN is neither
        if xp.isdtype(labels.dtype, "real floating"):
            valid = valid & (labels == xp.round(labels))
        if not bool(xp.all(valid)):
            raise ConfigError(f"test labels must be whole numbers from 0 to {self.sizes[-1] - 1} (one per input)")
        hits = self.predict(x) == xp.astype(labels, xp.int64)
        return xp.sum(xp.astype(hits, xp.int64))

    def _test_arrays(self, test_data):
        """Returns the test inputs and labels on the device, refused unless they are rows (n, sizes[0]) of values
        in [0, 1] and n labels (checked without reading the device: SGD reads one count an epoch)."""
        _refuse_pixels(test_data[0], "test")
        x, labels = (self.backend.asarray(a) for a in test_data)
        if x.ndim != 2 or x.shape[1] != self.sizes[0] or labels.shape != (x.shape[0],):
            raise ConfigError(
                f"test data must be inputs (n, {self.sizes[0]}) and labels (n,) for sizes {self.sizes}, "
                f"got {tuple(x.shape)} and {tuple(labels.shape)}"
            )
        return x, labels

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

    def total_cost(self, data, lmbda: float = 0.0) -> float:
        """Returns the mean cost over (x, one-hot y), either form, with L2's term: C = (1/n) Σ_x C_x + ½(λ/n) Σ_w w²
        (eq. 85); for the quadratic cost and λ = 0, C = 1/(2n) Σ_x ‖y(x) - a^L(x)‖² (eq. 6)."""
        x, y = book_data.training_arrays(data, self.sizes)
        lmbda, n = Settings(lmbda=lmbda).lmbda, x.shape[0]
        cost = float(self.cost.fn(self.outputs(x), self.backend.asarray(y, dtype=self.dtype))) / n
        return cost + float(l2_term(self.weights, lmbda, n)) if lmbda else cost


@contextlib.contextmanager
def _told(progress, n: int, epoch: int):
    """Yields what to tell of the examples an epoch has done: ``progress`` itself, None, or for True a tqdm bar
    (tqdm.auto: a notebook's widget in Jupyter), gone when the epoch ends."""
    if progress is not True:
        yield progress or None
        return
    from tqdm.auto import tqdm

    with tqdm(total=n, desc=f"Epoch {epoch}", unit="ex", unit_scale=True, leave=False) as bar:
        yield bar.update


def check_memory(backend, sizes, dtype: str) -> None:
    """None when the parameters of ``sizes`` fit on ``backend`` (drawn in float64 on the host first); else one line."""
    n = parameter_count(sizes)
    backend.check_memory(n * np.dtype(dtype).itemsize, f"sizes {sizes} ({n:,} parameters)", host=8 * n)


def _refuse_pixels(x, split: str) -> None:
    """None for inputs as the network reads them; ConfigError for uint8 pixels (0-255), as load_host() keeps them."""
    if isinstance(getattr(x, "dtype", None), np.dtype) and x.dtype == np.uint8:
        raise ConfigError(f"{split} inputs are uint8 pixels (0 to 255): scale them to [0, 1] first (pin() does)")
