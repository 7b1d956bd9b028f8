"""The book's data format, turned once into the arrays ``Network.SGD`` trains on.

The book passes pairs ``(x (784, 1), one-hot y (10, 1))`` (test data: ``(x, label)``), in a list or a ``zip``;
gpunet's form is one pair of arrays, rows ``(n, 784)`` and ``(n, 10)`` (labels ``(n,)``). Arrays pass through.
Neither form may be empty: a ``zip`` already read is, and training or scoring on it would count nothing.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def is_arrays(data) -> bool:
    """gpunet's form: a pair (inputs, targets) of arrays, not a sequence of examples."""
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(hasattr(a, "shape") for a in data)


def arrays(training_data, test_data, sizes):
    """(training_data, test_data) in gpunet's form, from either form; test_data may be None."""
    return training_arrays(training_data, sizes), None if test_data is None else test_arrays(test_data, sizes)


def training_arrays(data, sizes, name: str = "training"):
    """``data`` in gpunet's form (x rows, one-hot rows), from either form; refused when it holds no example."""
    return _not_empty(data if is_arrays(data) else _rows(data, sizes, name, labels=False), data, name)


def test_arrays(test_data, sizes):
    """``test_data`` in gpunet's form (x rows, labels), from either form; refused when it holds no example."""
    return _not_empty(
        test_data if is_arrays(test_data) else _rows(test_data, sizes, "test", labels=True), test_data, "test"
    )


def _not_empty(rows, given, name: str):
    """``rows`` when they hold an example; else one line saying why there is none (an iterator read already)."""
    if rows[0].shape[0] != 0:
        return rows
    if iter(given) is given:  # a zip, a generator: read once, by an earlier call or by the caller
        raise ConfigError(
            f"{name} data is an iterator with nothing left (a zip is read once, and this one was read already): "
            f"keep it in a list, {name}_data = list({name}_data), before its first use, and pass the list"
        )
    raise ConfigError(f"{name} data holds no examples: give at least one")


def _rows(pairs, sizes, name: str, labels: bool):
    """Inputs (n, sizes[0]) and, per example, a one-hot row (n, sizes[-1]) or a label (n,)."""
    n_in, n_out = sizes[0], sizes[-1]
    want = "(x, label)" if labels else f"(x, y) with y ({n_out}, 1)"
    if not hasattr(pairs, "__iter__"):
        raise ConfigError(f"{name} data must be arrays (inputs, targets) or a list of {want} tuples, got {pairs!r}")
    pairs = list(pairs)  # a zip iterator is read once, as the Python 3 ports do with list(training_data)
    if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
        raise ConfigError(f"{name} data must be arrays (inputs, targets) or a list of {want} tuples")
    try:
        x = np.stack([np.reshape(np.asarray(p[0]), (n_in,)) for p in pairs]) if pairs else np.empty((0, n_in))
        if labels:
            y: np.ndarray = np.array([int(np.asarray(p[1]).item()) for p in pairs], dtype=np.int64)
        else:
            y = np.stack([np.reshape(np.asarray(p[1]), (n_out,)) for p in pairs]) if pairs else np.empty((0, n_out))
    except (ValueError, TypeError):
        raise ConfigError(
            f"{name} data as {want} tuples needs every x of {n_in} values (the book's ({n_in}, 1) columns) "
            f"for sizes {list(sizes)}" + ("" if labels else f", every y of {n_out}")
        ) from None
    return x, y
