"""Sweeps: a grid of networks (:mod:`.grid`) trained as stacks through the epoch kernels (:mod:`.stacks`),
here or on a Dask cluster (:mod:`.dist`), resumable (:mod:`.runner`), kept in files (:mod:`.outputs`) once
:mod:`.storage` has found room for them, and summarised as statistics (:mod:`.stats`).
"""

from __future__ import annotations

from .grid import Config, Grid
from .runner import DataSource, Sweep, sweep
from .stacks import Best, NetworkRecord

__all__ = ["Best", "Config", "DataSource", "Grid", "NetworkRecord", "Sweep", "sweep"]
