"""Sweeps: a grid of networks (:mod:`.grid`) trained as stacks (:mod:`.stacks`), here or on Dask (:mod:`.dist`),
resumable (:mod:`.runner`), kept in files (:mod:`.outputs`, :mod:`.storage`), summarised (:mod:`.stats`)."""

from __future__ import annotations

from .grid import Config, Grid
from .runner import DataSource, Sweep, sweep
from .stacks import Best, NetworkRecord

__all__ = ["Best", "Config", "DataSource", "Grid", "NetworkRecord", "Sweep", "sweep"]
