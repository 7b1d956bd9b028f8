"""The book's ``network2`` (chapters 3 and 5): its calls, over gpunet's one :class:`gpunet.network.Network`.

    from gpunet import mnist_loader, network2
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.large_weight_initializer()
    net.SGD(training_data, 30, 10, 0.5, evaluation_data=test_data, monitor_evaluation_accuracy=True)

The costs are :mod:`gpunet.maths`'s, the epochs run in the epoch kernel gpunet chooses; ``save`` writes the
book's JSON (through :mod:`gpunet.io.book_json`, atomically) and :func:`load` reads it back.
"""

from __future__ import annotations

import numpy as np

from .. import network
from ..io import book_json
from ..maths import CrossEntropyCost, QuadraticCost
from . import pairs
from .mnist_loader import vectorized_result

__all__ = ["CrossEntropyCost", "Network", "QuadraticCost", "load", "vectorized_result"]
BOOK_NAMES = {cost.__name__: cost for cost in (QuadraticCost, CrossEntropyCost)}  # the "cost" of save()'s JSON


class Network(network.Network):
    """network2.py's ``Network``: the cross-entropy cost and N(0, 1/n_in) weights unless told otherwise."""

    def __init__(self, sizes, cost=CrossEntropyCost, *, seed=None, device="auto", dtype: str = "float32"):
        super().__init__(sizes, seed=seed, device=device, dtype=dtype, cost=cost, init="default")

    def default_weight_initializer(self) -> None:
        """New weights w ~ N(0, 1/n_in) and biases b ~ N(0, 1), from the network's generator."""
        self.initialize("default")

    def large_weight_initializer(self) -> None:
        """New weights and biases ~ N(0, 1), chapter 1's, from the network's generator."""
        self.initialize("large")

    def SGD(  # type: ignore[override]  # network2.py's signature
        self,
        training_data,
        epochs: int,
        mini_batch_size: int,
        eta: float,
        lmbda: float = 0.0,
        evaluation_data=None,
        monitor_evaluation_cost: bool = False,
        monitor_evaluation_accuracy: bool = False,
        monitor_training_cost: bool = False,
        monitor_training_accuracy: bool = False,
        early_stopping_n: int = 0,
    ):
        """Returns network2.py's four per-epoch lists: (evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy), each empty unless its ``monitor_*`` flag is set; ``lmbda`` is L2's λ (eq. 93);
        ``early_stopping_n`` epochs without a better accuracy on ``evaluation_data`` end the run (0: never)."""
        training, evaluation = pairs.arrays(training_data, evaluation_data, self.sizes)
        lists: tuple[list, list, list, list] = ([], [], [], [])

        def monitor(result) -> None:
            print(f"Epoch {result.epoch} training complete")
            for flag, k, value, what in (
                (monitor_training_cost, 2, lambda: self.total_cost(training, lmbda), "Cost on training data"),
                (
                    monitor_training_accuracy,
                    3,
                    lambda: self.accuracy(training, convert=True),
                    "Accuracy on training data",
                ),
                (
                    monitor_evaluation_cost,
                    0,
                    lambda: self.total_cost(evaluation, lmbda, convert=True),
                    "Cost on evaluation data",
                ),
                (monitor_evaluation_accuracy, 1, lambda: self.accuracy(evaluation), "Accuracy on evaluation data"),
            ):
                if flag:
                    lists[k].append(value())
                    print(f"{what}: {lists[k][-1]}")
            if result.stopped:
                print(f"Early-stopping: No accuracy change in last epochs: {early_stopping_n}")

        scored = evaluation if early_stopping_n else None  # the rule counts the evaluation data's accuracy
        stop = early_stopping_n
        super().SGD(training, epochs, mini_batch_size, eta, scored, lmbda=lmbda, stop_after=stop, callback=monitor)
        return lists

    def accuracy(self, data, convert: bool = False) -> int:
        """Returns how many inputs of ``data`` the network answers right; ``convert``: ``data``'s y are one-hot
        (the training data), not labels."""
        if convert:
            x, y = pairs.arrays(data, None, self.sizes)[0]
            data = (x, np.argmax(np.asarray(y), axis=-1))
        return self.evaluate(data)

    def total_cost(self, data, lmbda: float = 0.0, convert: bool = False) -> float:
        """Returns the cost on ``data`` with L2's term (eq. 85); ``convert``: ``data``'s y are labels (test data)."""
        if convert:
            x, labels = pairs.test_arrays(data, self.sizes)
            data = (x, np.eye(self.sizes[-1])[np.asarray(labels, np.int64)])
        return super().total_cost(data, lmbda)  # either form of (x, one-hot y)

    def save(self, filename) -> None:  # type: ignore[override]  # the book's JSON, not gpunet's .npz
        """Writes sizes, weights, biases and the cost's class name to ``filename`` as the book's JSON."""
        to_host = self.backend.to_host
        weights, biases = [to_host(w) for w in self.weights], [to_host(b) for b in self.biases]
        book_json.save(filename, self.sizes, weights, biases, self.cost.__name__)


def load(filename, device="auto", dtype: str = "float32") -> Network:
    """Returns the network that :meth:`Network.save` wrote to ``filename`` (the book's JSON)."""
    sizes, weights, biases, cost = book_json.load(filename)
    net = Network(sizes, cost=BOOK_NAMES[cost], seed=0, device=device, dtype=dtype)
    net.weights = [net.backend.asarray(w, dtype=net.dtype) for w in weights]
    net.biases = [net.backend.asarray(b, dtype=net.dtype) for b in biases]
    return net
