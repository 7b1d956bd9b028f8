"""The grid of a sweep: seeds x etas x sizes x mini-batch sizes x dtypes, checked before anything trains."""

from __future__ import annotations

import itertools
import numbers
import re
from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..validation import (
    COUNT,
    MAX_EPOCHS,
    POSITIVE_INT,
    POSITIVE_REAL,
    TRAIN_DEFAULTS,
    Interval,
    check,
    check_sizes,
)

DTYPES = ("float32", "float64")
SWEEP_EPOCHS = Interval(numbers.Integral, 1, high=MAX_EPOCHS)  # at least one: each network is scored


@dataclass(frozen=True)
class Config:
    """One cell of the grid: the networks of one configuration differ only by their seed."""

    sizes: tuple[int, ...]
    eta: float
    batch_size: int
    dtype: str

    @property
    def label(self) -> str:
        return f"[{','.join(map(str, self.sizes))}] eta {self.eta:g} batch {self.batch_size} {self.dtype}"

    @property
    def slug(self) -> str:
        """The label as a file-name part: 784-30-10_eta3_batch10_float32."""
        return f"{'-'.join(map(str, self.sizes))}_eta{self.eta:g}_batch{self.batch_size}_{self.dtype}"

    @property
    def stack(self) -> tuple:
        """Members with the same stack key train together; their etas may differ."""
        return self.sizes, self.batch_size, self.dtype


@dataclass(frozen=True)
class Grid:
    """Seeds x etas x sizes x mini-batch sizes x dtypes, trained for ``epochs`` each and scored on ``eval``."""

    seeds: tuple[int, ...]
    etas: tuple[float, ...] = (TRAIN_DEFAULTS["eta"],)
    sizes: tuple[tuple[int, ...], ...] = (tuple(TRAIN_DEFAULTS["sizes"]),)
    batch_sizes: tuple[int, ...] = (TRAIN_DEFAULTS["batch_size"],)
    dtypes: tuple[str, ...] = (TRAIN_DEFAULTS["dtype"],)
    epochs: int = TRAIN_DEFAULTS["epochs"]
    eval: str = "test"

    @classmethod
    def create(cls, seeds, etas=(TRAIN_DEFAULTS["eta"],), sizes=(TRAIN_DEFAULTS["sizes"],),
               batch_sizes=(TRAIN_DEFAULTS["batch_size"],), dtypes=(TRAIN_DEFAULTS["dtype"],),
               epochs=TRAIN_DEFAULTS["epochs"], eval="test") -> Grid:  # fmt: skip
        """A checked grid; seeds and the lists may be strings as on the command line ("1-100", "3,0.5")."""
        if len(sizes) and isinstance(sizes[0], numbers.Integral):  # one list of layer sizes (NumPy's ints too)
            sizes = (sizes,)
        grid = cls(
            seeds=parse_seeds(seeds) if isinstance(seeds, str) else _unique("--seeds", [_seed(s) for s in seeds]),
            etas=_items("--eta", etas, _eta),
            sizes=_unique("--sizes", [_layer_sizes(s) for s in sizes]),
            batch_sizes=_items("--batch-size", batch_sizes, _batch),
            dtypes=_items("--dtype", dtypes, _dtype),
            epochs=check("--epochs", epochs, SWEEP_EPOCHS),
            eval=eval,
        )
        if eval not in ("test", "validation"):
            raise ConfigError(f"--eval must be test or validation for a sweep, got {eval!r}")
        return grid

    def configs(self) -> list[Config]:
        return [
            Config(s, e, b, d) for s, e, b, d in itertools.product(self.sizes, self.etas, self.batch_sizes, self.dtypes)
        ]

    def networks(self) -> list[tuple[Config, int]]:
        return [(c, s) for c in self.configs() for s in self.seeds]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Grid:
        return cls.create(d["seeds"], d["etas"], [tuple(s) for s in d["sizes"]], d["batch_sizes"], d["dtypes"],
                          d["epochs"], d["eval"])  # fmt: skip


def parse_seeds(text: str) -> tuple[int, ...]:
    """``1-100``, ``1,5,9`` or both (``1-3,7``): seeds >= 0, each once, in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ConfigError(f"--seeds {text!r}: expected whole numbers >= 0 and ranges like 1-100, e.g. 1-10,42")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise ConfigError(f"--seeds {part.strip()}: the range is empty; write it upwards, {last}-{first}")
        seeds.extend(range(first, last + 1))
    return _unique("--seeds", seeds)


def split_list(text: str) -> list[str]:
    """A comma-separated list from the command line, as strings for :meth:`Grid.create` to check."""
    return [t.strip() for t in text.split(",")] if text.strip() else []


def _items(flag, values, item) -> tuple:
    if isinstance(values, str):
        values = split_list(values)
    elif isinstance(values, (int, float)):
        values = [values]
    return _unique(flag, [item(v) for v in values])


def _unique(flag, values) -> tuple:
    if not values:
        raise ConfigError(f"{flag} is empty: give at least one value")
    repeated = sorted({v for v in values if values.count(v) > 1}, key=values.index)
    if repeated:
        raise ConfigError(f"{flag}: {repeated[0]} is given twice; list each value once")
    return tuple(values)


def _number(v, flag: str, interval: Interval):
    """``v``, a number or a string from the command line, checked as train checks its numbers (validation.check)."""
    if isinstance(v, str):
        try:
            v = int(v) if interval.kind is numbers.Integral else float(v)
        except ValueError:
            raise ConfigError(f"{flag} must be {interval.describe()}, got {v!r}") from None
    return check(flag, v, interval)


def _seed(v) -> int:
    return _number(v, "--seeds", COUNT)


def _eta(v) -> float:
    return _number(v, "--eta", POSITIVE_REAL)


def _batch(v) -> int:
    return _number(v, "--batch-size", POSITIVE_INT)


def _dtype(v) -> str:
    if v not in DTYPES:
        raise ConfigError(f"--dtype: expected float32 or float64, got {v!r}")
    return v


def _layer_sizes(v) -> tuple[int, ...]:
    """Checked as Network checks its sizes (validation.check_sizes), the error naming --sizes."""
    return tuple(check_sizes(v, error=lambda message: ConfigError(f"--sizes: {message}")))
