"""One check for every number a user gives gpunet, from Python or from a file.

In the manner of scikit-learn's ``_param_validation``: a parameter is an :class:`Interval` of a
:mod:`numbers` type, so NumPy's integers and floats (``np.int64(30)``, ``np.float32(3.0)``) are
accepted wherever Python's are, and ``True`` is not taken for 1.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``numbers.Integral`` or ``numbers.Real``) from ``low`` up, finite, and ``> low`` if open."""

    kind: Any  # numbers.Integral or numbers.Real
    low: float | None = None
    open_low: bool = False
    high: int | None = None  # and at most this

    def describe(self) -> str:
        what = "a whole number" if self.kind is numbers.Integral else "a finite number"
        what = what if self.low is None else f"{what} {'>' if self.open_low else '>='} {self.low:g}"
        return what if self.high is None else f"{what} and <= {self.high:,}"

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.kind is numbers.Real and not math.isfinite(value):
            return False
        if self.high is not None and value > self.high:
            return False
        return self.low is None or (value > self.low if self.open_low else value >= self.low)


COUNT = Interval(numbers.Integral, 0)  # epochs, a seed, an epoch counter, a validation size
POSITIVE_INT = Interval(numbers.Integral, 1)  # layer sizes, a mini-batch size
POSITIVE_REAL = Interval(numbers.Real, 0, open_low=True)  # the learning rate eta
NON_NEGATIVE_REAL = Interval(numbers.Real, 0)  # an accuracy, a cost
# More epochs than a run reaches: 12 hours of the fastest epoch measured (0.044 s, MNIST on an H100); the book's is 30.
MAX_EPOCHS = 1_000_000
EPOCHS = Interval(numbers.Integral, 0, high=MAX_EPOCHS)  # --epochs, a model's epoch counter


def check(name: str, value, interval: Interval, error=ConfigError):
    """``value`` as a Python int or float when it lies in ``interval``; else ``error`` naming ``name``."""
    if not interval.holds(value):
        raise error(f"{name} must be {interval.describe()}, got {value!r}")
    return int(value) if interval.kind is numbers.Integral else float(value)


FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": sys.float_info.max}  # np.finfo(dtype).max


def check_eta_fits(eta: float, dtype: str, error=ConfigError) -> None:
    """A learning rate the dtype can hold: a larger one overflows in its first step (a warning, then NaN)."""
    if eta > FLOAT_MAX[dtype]:
        raise error(
            f"eta {eta:g} does not fit {dtype} (at most {FLOAT_MAX[dtype]:.3g}); give a smaller eta, or float64"
        )


def check_sizes(sizes, error=ConfigError) -> list[int]:
    """Layer sizes: a sequence of two or more whole numbers >= 1, as Python ints."""
    try:
        sizes = list(sizes)
    except TypeError:
        raise error(f"sizes must be two or more positive layer sizes, got {sizes!r}") from None
    if len(sizes) < 2 or not all(POSITIVE_INT.holds(n) for n in sizes):
        raise error(f"sizes must be two or more positive layer sizes, got {sizes!r}")
    return [int(n) for n in sizes]


# The book's run (chapter 1): what train, sweep and bench use for a setting the user leaves out.
TRAIN_DEFAULTS: dict[str, Any] = {
    "sizes": [784, 30, 10],
    "epochs": 30,
    "batch_size": 10,
    "eta": 3.0,
    "dtype": "float32",
    "validation_size": 10_000,
}
