"""The one check of every number a user gives gpunet: :class:`Settings`, checked as it is made.

In the manner of scikit-learn's ``_parameter_constraints``: ``CONSTRAINTS`` maps each setting to its rule
(an :class:`Interval` of a :mod:`numbers` type, so NumPy's numbers pass and ``True`` is not 1).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

DTYPES = ("float32", "float64")
COST_NAMES = ("quadratic", "cross-entropy")  # gpunet.maths.COSTS: chapter 1's and chapter 3's
INIT_NAMES = ("large", "default")  # gpunet.maths.INITS: N(0, 1) weights (chapter 1), N(0, 1/n_in) (chapter 3)
FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": sys.float_info.max}  # np.finfo(dtype).max


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
        if self.kind is numbers.Real and not math.isfinite(value) or self.high is not None and value > self.high:
            return False
        return self.low is None or (value > self.low if self.open_low else value >= self.low)

    def convert(self, value):
        return int(value) if self.kind is numbers.Integral else float(value)


@dataclass(frozen=True)
class Rule:
    """A rule other than a range of numbers: what it says, whether a value holds, and the value as kept."""

    text: str
    holds: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value

    def describe(self) -> str:
        return self.text


def _are_layer_sizes(value) -> bool:
    try:
        sizes = list(value)
    except TypeError:
        return False
    return len(sizes) >= 2 and all(POSITIVE_INT.holds(n) for n in sizes)


COUNT = Interval(numbers.Integral, 0)  # a seed, an epoch counter, a validation size
POSITIVE_INT = Interval(numbers.Integral, 1)  # a layer size, a mini-batch size
POSITIVE_REAL = Interval(numbers.Real, 0, open_low=True)  # the learning rate eta
NON_NEGATIVE_REAL = Interval(numbers.Real, 0)  # an accuracy, a cost
# More epochs than a run reaches: 12 hours of the fastest epoch measured (0.044 s, MNIST on an H100); the book's is 30.
MAX_EPOCHS = 1_000_000
EPOCHS = Interval(numbers.Integral, 0, high=MAX_EPOCHS)  # a model's epoch counter, SGD's epochs
RUN_EPOCHS = Interval(numbers.Integral, 1, high=MAX_EPOCHS)  # --epochs: at least one, scored
CONSTRAINTS: dict[str, Any] = {
    "sizes": Rule("two or more positive layer sizes", _are_layer_sizes, lambda v: tuple(int(n) for n in v)),
    "epochs": EPOCHS,
    "batch_size": POSITIVE_INT,
    "eta": POSITIVE_REAL,
    "dtype": Rule(" or ".join(DTYPES), lambda v: isinstance(v, str) and v in DTYPES),
    "seed": COUNT,
    "validation_size": COUNT,
    "cost": Rule(" or ".join(COST_NAMES), lambda v: isinstance(v, str) and v in COST_NAMES),
    "lmbda": NON_NEGATIVE_REAL,  # L2's λ (eq. 87); 0: none
    "init": Rule(" or ".join(INIT_NAMES), lambda v: isinstance(v, str) and v in INIT_NAMES),
}
CHAPTER_1 = {"cost": "quadratic", "lmbda": 0.0, "init": "large"}  # what a checkpoint without them trained with
NAMES = {
    "batch_size": "mini-batch size",
    "eta": "eta (the learning rate)",
    "lmbda": "lmbda (L2's λ)",
}  # in the Python API's errors


def check(name: str, value, rule, error=ConfigError):
    """Returns ``value`` as ``rule`` keeps it (a Python int, float, tuple) when it holds; else ``error``."""
    if not rule.holds(value):
        raise error(f"{name} must be {rule.describe()}, got {value!r}")
    return rule.convert(value)


def check_sizes(sizes, error=ConfigError) -> list[int]:
    """Returns layer sizes as a list of Python ints, checked as :class:`Settings` checks them."""
    return list(check("sizes", sizes, CONSTRAINTS["sizes"], error))


@dataclass(frozen=True)
class Settings:
    """A run's settings, each checked against ``CONSTRAINTS`` as they are made; the defaults are the book's."""

    sizes: Sequence[int] = (784, 30, 10)  # kept as a tuple
    epochs: int = 30
    batch_size: int = 10
    eta: float = 3.0
    dtype: str = "float32"
    seed: int | None = None
    validation_size: int = 10_000
    cost: str = "quadratic"
    lmbda: float = 0.0
    init: str = "large"

    def __post_init__(self):
        for field, value in checked(vars(self)).items():
            object.__setattr__(self, field, value)

    def record(self) -> dict:
        """Returns the settings as a checkpoint keeps them (JSON: sizes a list)."""
        return {**dataclasses.asdict(self), "sizes": list(self.sizes)}


def checked(values: dict, name=lambda field: NAMES.get(field, field), error=ConfigError) -> dict:
    """Returns every setting of ``values`` as CONSTRAINTS keep it, else ``error`` naming one as ``name(field)``."""
    values = dict(values)
    for k, v in values.items():
        if v is not None or k != "seed":  # seed None: a fresh one
            values[k] = check(name(k), v, CONSTRAINTS[k], error)
    eta, dtype, most = values["eta"], values["dtype"], FLOAT_MAX[values["dtype"]]
    if eta > most:  # the first step would overflow (a warning, then NaN)
        raise error(f"eta {eta:g} does not fit {dtype} (at most {most:.3g}); give a smaller eta, or float64")
    return values


BOOK = Settings()  # chapter 1's run: what train, sweep and bench use for a setting the user leaves out
