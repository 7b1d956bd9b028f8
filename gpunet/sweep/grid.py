"""The grid of a sweep: seeds x etas x sizes x mini-batch sizes x dtypes x costs x lmbdas x initialisations,
checked before anything trains."""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import numbers
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import BOOK, CONSTRAINTS, RUN_EPOCHS, Settings, check


@dataclass(frozen=True)
class Config:
    """One cell of the grid: the networks of one configuration differ only by their seed."""

    sizes: tuple[int, ...]
    eta: float
    batch_size: int
    dtype: str
    cost: str = BOOK.cost  # chapter 3's objective; chapter 1's by default, left out of label and slug
    lmbda: float = BOOK.lmbda
    init: str = BOOK.init

    def _objective(self) -> list[tuple[str, str]]:
        """(name, value) of each of cost, lmbda and init that is not chapter 1's."""
        values = {"cost": self.cost, "lmbda": f"{self.lmbda:g}", "init": self.init}
        book = {"cost": BOOK.cost, "lmbda": f"{BOOK.lmbda:g}", "init": BOOK.init}
        return [(k, v) for k, v in values.items() if v != book[k]]

    @property
    def label(self) -> str:
        objective = "".join(f" {k} {v}" for k, v in self._objective())
        return f"[{','.join(map(str, self.sizes))}] eta {self.eta:g} batch {self.batch_size} {self.dtype}{objective}"

    @property
    def slug(self) -> str:
        """The label as a file-name part: 784-30-10_eta3_batch10_float32 (_cost-cross-entropy_lmbda5 ...)."""
        objective = "".join(f"_{k}{'-' if k != 'lmbda' else ''}{v}" for k, v in self._objective())
        return f"{'-'.join(map(str, self.sizes))}_eta{self.eta:g}_batch{self.batch_size}_{self.dtype}{objective}"

    @property
    def stack(self) -> tuple:
        """Members with the same stack key train together (one kernel, one cost and λ); etas and inits may differ."""
        return self.sizes, self.batch_size, self.dtype, self.cost, self.lmbda


@dataclass(frozen=True)
class Grid:
    """Seeds x etas x sizes x mini-batch sizes x dtypes x costs x lmbdas x inits, trained for ``epochs`` each and
    scored on ``eval``."""

    seeds: Seeds
    etas: tuple[float, ...] = (BOOK.eta,)
    sizes: tuple[tuple[int, ...], ...] = (tuple(BOOK.sizes),)
    batch_sizes: tuple[int, ...] = (BOOK.batch_size,)
    dtypes: tuple[str, ...] = (BOOK.dtype,)
    epochs: int = BOOK.epochs
    eval: str = "test"
    costs: tuple[str, ...] = (BOOK.cost,)
    lmbdas: tuple[float, ...] = (BOOK.lmbda,)
    inits: tuple[str, ...] = (BOOK.init,)

    @classmethod
    def create(cls, seeds, *, etas=(BOOK.eta,), sizes=(BOOK.sizes,), batch_sizes=(BOOK.batch_size,),
               dtypes=(BOOK.dtype,), epochs=BOOK.epochs, eval="test", costs=(BOOK.cost,), lmbdas=(BOOK.lmbda,),
               inits=(BOOK.init,)) -> Grid:  # fmt: skip
        """Returns the grid, checked; seeds and the lists may be strings as on the command line ("1-100", "3,0.5")."""
        if len(sizes) and isinstance(sizes[0], numbers.Integral):  # one list of layer sizes (NumPy's ints too)
            sizes = (sizes,)
        grid = cls(
            seeds=_seeds(seeds),
            etas=_items("--eta", etas, "eta"),
            sizes=_unique("--sizes", [_layer_sizes(s) for s in sizes]),
            batch_sizes=_items("--batch-size", batch_sizes, "batch_size"),
            dtypes=_items("--dtype", dtypes, "dtype"),
            epochs=check("--epochs", epochs, RUN_EPOCHS),
            eval=eval,
            costs=_items("--cost", costs, "cost"),
            lmbdas=_items("--lmbda", lmbdas, "lmbda"),
            inits=_items("--init", inits, "init"),
        )
        if eval not in ("test", "validation"):
            raise ConfigError(f"--eval must be test or validation for a sweep, got {eval!r}")
        for eta, dtype in itertools.product(grid.etas, grid.dtypes):
            Settings(eta=eta, dtype=dtype)  # as train refuses an eta the dtype cannot hold
        return grid

    @property
    def n_configs(self) -> int:
        return math.prod(len(values) for values in self._axes)

    @property
    def _axes(self) -> tuple[tuple, ...]:
        """The grid's axes in the order of :meth:`iter_configs` (and of :func:`_values`)."""
        return self.sizes, self.etas, self.batch_sizes, self.dtypes, self.costs, self.lmbdas, self.inits

    @property
    def count(self) -> int:
        """The networks of the grid: a product, nothing expanded."""
        return self.n_configs * len(self.seeds)

    def configs(self) -> list[Config]:
        return list(self.iter_configs())

    def iter_configs(self) -> Iterator[Config]:
        for values in itertools.product(*self._axes):
            yield Config(*values)

    def networks(self) -> list[tuple[Config, int]]:
        return list(self.iter_networks())

    def iter_networks(self) -> Iterator[tuple[Config, int]]:
        """(configuration, seed) in the grid's order, one at a time."""
        return ((c, s) for c in self.iter_configs() for s in self.seeds)

    def stacks(self) -> Iterator[tuple]:
        """The stack keys (sizes, batch, dtype, cost, lmbda), those that pin the same data (dtype, outputs) one
        after another."""
        keys = itertools.product(self.sizes, self.batch_sizes, self.dtypes, self.costs, self.lmbdas)
        return iter(sorted(keys, key=lambda k: (self.dtypes.index(k[2]), k[0][-1])))  # a stable sort

    def holds(self, config: Config, seed: int) -> bool:
        return seed in self.seeds and all(v in index for index, v in zip(self._positions, _values(config)))

    def position(self, config: Config, seed: int) -> int:
        """The index of (config, seed) in :meth:`iter_networks`' order, found without walking it."""
        k = 0
        for index, v in zip(self._positions, _values(config)):
            k = k * len(index) + index[v]
        return k * len(self.seeds) + self.seeds.index(seed)

    @functools.cached_property
    def _positions(self) -> tuple[dict, ...]:
        return tuple({v: i for i, v in enumerate(values)} for values in self._axes)

    def to_json(self) -> dict:
        return {"seeds": self.seeds.text(), "etas": list(self.etas), "sizes": [list(s) for s in self.sizes],
                "batch_sizes": list(self.batch_sizes), "dtypes": list(self.dtypes), "epochs": self.epochs,
                "eval": self.eval, "costs": list(self.costs), "lmbdas": list(self.lmbdas),
                "inits": list(self.inits)}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> Grid:
        """The grid a sweep's manifest keeps; one from before chapter 3 swept chapter 1's objective only."""
        return cls.create(d["seeds"], etas=d["etas"], sizes=[tuple(s) for s in d["sizes"]],
                          batch_sizes=d["batch_sizes"], dtypes=d["dtypes"], epochs=d["epochs"],
                          eval=d["eval"], costs=d.get("costs", (BOOK.cost,)), lmbdas=d.get("lmbdas", (BOOK.lmbda,)),
                          inits=d.get("inits", (BOOK.init,)))  # fmt: skip


class Seeds(Sequence):
    """Seeds kept as the ranges they were given in (``1-100000,42``), never expanded: count, membership and
    position come from the ranges."""

    def __init__(self, ranges):
        self.ranges = tuple((int(a), int(b)) for a, b in ranges)  # inclusive, disjoint, in the order given
        if not self.ranges:
            raise ConfigError("--seeds is empty: give at least one value")
        self._offsets = list(itertools.accumulate((b - a + 1 for a, b in self.ranges), initial=0))
        self._sorted = sorted((a, b, k) for k, (a, b) in enumerate(self.ranges))  # for lookups
        for (_, last, _), (first, _, _) in zip(self._sorted, self._sorted[1:]):
            if first <= last:
                raise ConfigError(f"--seeds: {first} is given twice; list each value once")

    @classmethod
    def of(cls, values) -> Seeds:
        """Seeds from a list of numbers (each checked), runs of consecutive ones kept as ranges."""
        ranges: list[list[int]] = []
        for seed in (_number(v, "--seeds", "seed") for v in values):
            if ranges and seed == ranges[-1][1] + 1:
                ranges[-1][1] = seed
            else:
                ranges.append([seed, seed])
        return cls(ranges)

    def __len__(self) -> int:
        return self._offsets[-1]

    def __iter__(self) -> Iterator[int]:
        for a, b in self.ranges:
            yield from range(a, b + 1)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(len(self))))
        i = i + len(self) if i < 0 else i
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self._offsets, i) - 1
        return self.ranges[k][0] + i - self._offsets[k]

    def __contains__(self, seed) -> bool:
        return self._find(seed) is not None

    def index(self, seed, start=0, stop=None) -> int:
        k = self._find(seed)
        if k is None:
            raise ValueError(f"{seed} is not a seed of the sweep")
        return self._offsets[k] + seed - self.ranges[k][0]

    def _find(self, seed) -> int | None:
        """The index of the range holding ``seed``, or None."""
        if not isinstance(seed, numbers.Integral):
            return None
        seed = int(seed)
        j = bisect.bisect_right(self._sorted, (seed, float("inf"), 0)) - 1
        if j >= 0 and self._sorted[j][0] <= seed <= self._sorted[j][1]:
            return self._sorted[j][2]
        return None

    def __eq__(self, other) -> bool:
        if isinstance(other, Seeds):
            return list(self._runs()) == list(other._runs())
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __hash__(self) -> int:
        return hash(tuple(self._runs()))

    def _runs(self) -> list[tuple[int, int]]:
        """The ranges with adjacent ones merged: equal seeds, equal runs."""
        runs: list = []
        for a, b in self.ranges:
            if runs and a == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
        return runs

    def text(self) -> str:
        """As --seeds takes them: ``1-100,7``."""
        return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in self._runs())

    def __repr__(self) -> str:
        return f"Seeds({self.text()!r})"


def parse_seeds(text: str) -> Seeds:
    """``1-100``, ``1,5,9`` or both (``1-3,7``): seeds >= 0, each once, in the order given; not expanded."""
    ranges = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ConfigError(f"--seeds {text!r}: expected whole numbers >= 0 and ranges like 1-100, e.g. 1-10,42")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise ConfigError(f"--seeds {part.strip()}: the range is empty; write it upwards, {last}-{first}")
        ranges.append((_number(first, "--seeds", "seed"), _number(last, "--seeds", "seed")))
    return Seeds(ranges)


def split_list(text: str) -> list[str]:
    """A comma-separated list from the command line, as strings for :meth:`Grid.create` to check."""
    return [t.strip() for t in text.split(",")] if text.strip() else []


def _items(flag, values, setting: str) -> tuple:
    if isinstance(values, str):
        values = split_list(values)
    elif isinstance(values, (int, float)):
        values = [values]
    return _unique(flag, [_number(v, flag, setting) for v in values])


def _unique(flag, values) -> tuple:
    if not values:
        raise ConfigError(f"{flag} is empty: give at least one value")
    seen: set = set()
    for v in values:  # in linear time: the first value seen again is named
        if v in seen:
            raise ConfigError(f"{flag}: {v} is given twice; list each value once")
        seen.add(v)
    return tuple(values)


def _number(v, flag: str, setting: str):
    """Returns ``v``, a value or a string from the command line, checked by the setting's constraint."""
    rule = CONSTRAINTS[setting]
    if setting in ("dtype", "cost", "init") and not rule.holds(v):  # names, not numbers
        raise ConfigError(f"{flag}: expected {rule.describe()}, got {v!r}")
    if isinstance(v, str) and hasattr(rule, "kind"):
        try:
            v = int(v) if rule.kind is numbers.Integral else float(v)
        except ValueError:
            raise ConfigError(f"{flag} must be {rule.describe()}, got {v!r}") from None
    return check(flag, v, rule)


def _seeds(seeds) -> Seeds:
    """Seeds as given: a string like "1-100,7", a Seeds, or a list of numbers."""
    if isinstance(seeds, Seeds):
        return seeds
    if isinstance(seeds, str):
        return parse_seeds(seeds)
    return Seeds.of(seeds)


def _values(c: Config) -> tuple:
    """The configuration's values in the grid's order of axes."""
    return c.sizes, c.eta, c.batch_size, c.dtype, c.cost, c.lmbda, c.init


def _layer_sizes(v) -> tuple[int, ...]:
    """Returns layer sizes checked as Network checks them, the error naming --sizes."""
    return check("sizes", v, CONSTRAINTS["sizes"], error=lambda message: ConfigError(f"--sizes: {message}"))
