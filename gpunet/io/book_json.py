"""network2.py's model files: JSON with the book's keys (``sizes``, ``weights``, ``biases``, ``cost``), written
atomically and read back checked against the shapes ``sizes`` gives."""

from __future__ import annotations

import json

import numpy as np

from ..errors import DataError
from ..settings import check_sizes
from .fs import atomic_write, open_regular, parse_json

COST_CLASSES = ("QuadraticCost", "CrossEntropyCost")  # the book's names, as save() writes them
MAX_BYTES = 1 << 30  # the JSON of 10 million parameters, written as Python's repr of floats


def save(path, sizes, weights, biases, cost: str) -> None:
    """Writes the book's JSON for host arrays ``weights`` and ``biases`` to ``path``, atomically."""
    if cost not in COST_CLASSES:
        raise ValueError(f"cost {cost!r} is not one of {COST_CLASSES}")
    data = {
        "sizes": [int(n) for n in sizes],
        "weights": [np.asarray(w, np.float64).tolist() for w in weights],
        "biases": [np.asarray(b, np.float64).tolist() for b in biases],
        "cost": cost,
    }
    with atomic_write(path) as f:
        f.write(json.dumps(data).encode("utf-8"))


def load(path) -> tuple[list[int], list[np.ndarray], list[np.ndarray], str]:
    """Returns (sizes, weights, biases, cost class name) of a file :func:`save` wrote; DataError in one line for
    anything else (not JSON, a key missing, an array whose shape ``sizes`` does not give, a value not finite)."""
    with open_regular(path, "model file") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise DataError(path, f"larger than {MAX_BYTES:,} bytes: not a network2 model file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text: not a network2 model file (save(filename) writes JSON)") from None
    data = parse_json(text, str(path), error=DataError)
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= data.keys():
        raise DataError(path, "a network2 model file is JSON with keys sizes, weights, biases and cost")
    sizes = check_sizes(data["sizes"], error=lambda message: DataError(path, message))
    if data["cost"] not in COST_CLASSES:
        raise DataError(path, f"cost must be {' or '.join(COST_CLASSES)}, got {data['cost']!r}")
    weights = _arrays(path, data["weights"], [(n, n_in) for n_in, n in zip(sizes[:-1], sizes[1:])], "weights")
    biases = _arrays(path, data["biases"], [(n, 1) for n in sizes[1:]], "biases")
    return sizes, weights, biases, data["cost"]


def _arrays(path, values, shapes, what: str) -> list[np.ndarray]:
    """``values`` as float64 arrays of ``shapes``, each finite; else DataError."""
    if not isinstance(values, list) or len(values) != len(shapes):
        raise DataError(path, f"{what} must be a list of {len(shapes)} arrays, one per layer after the first")
    arrays = []
    for l, (v, shape) in enumerate(zip(values, shapes)):
        try:
            a = np.array(v, dtype=np.float64)
        except (ValueError, TypeError):
            a = None
        if a is None or a.shape != shape or not np.all(np.isfinite(a)):
            raise DataError(path, f"{what}[{l}] must be {shape[0]} x {shape[1]} finite numbers for these sizes")
        arrays.append(a)
    return arrays
