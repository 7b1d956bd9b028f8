"""What a sweep's results take, known before anything trains: the grid's count is a product, so a grid whose
results cannot be kept (in memory, and on disk with ``--out``) is refused in one line saying how much."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io.fs import check_disk, check_memory
from ..maths import parameter_count
from .grid import Grid

# Bytes of a NetworkRecord, more per epoch, and per epoch while sweep.jsonl is rewritten (docs/speed.md).
NETWORK_BYTES = 400
EPOCH_BYTES = 48
WRITTEN_EPOCH_BYTES = 1200
LOG_LINE_BYTES = 300  # an epoch's line of sweep.jsonl on disk
CSV_ROW_BYTES = 150  # a network's row of networks.csv


def best_bytes(grid: Grid) -> int:
    """The parameters of every configuration's best network, each kept in memory and saved."""
    per_sizes = sum(parameter_count(sizes) * np.dtype(dtype).itemsize for sizes in grid.sizes for dtype in grid.dtypes)
    return per_sizes * len(grid.etas) * len(grid.batch_sizes) * len(grid.costs) * len(grid.lmbdas) * len(grid.inits)


def check_storable(grid: Grid, out: Path | None) -> None:
    """Refuse in one line a grid whose results do not fit in the free memory, or with ``out`` on its disk."""
    epochs = grid.count * grid.epochs
    what = f"the sweep's results ({grid.count:,} networks x {grid.epochs:,} epochs)"
    hint = "sweep fewer seeds, values or epochs, or split the grid into several sweeps"
    memory = grid.count * NETWORK_BYTES + epochs * (EPOCH_BYTES + (WRITTEN_EPOCH_BYTES if out else 0))
    check_memory(memory + best_bytes(grid), what, f"; {hint}", ConfigError)
    if out is not None:
        disk = epochs * LOG_LINE_BYTES + grid.count * CSV_ROW_BYTES + best_bytes(grid)
        check_disk(disk, out, f"--out {out}: {what}", f"; {hint}", ConfigError)
