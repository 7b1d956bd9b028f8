"""A Dask worker of ``gpunet sweep --scheduler`` keeps its data between tasks, and checks it for every task."""

import pytest
from helpers import write_mnist_like

from gpunet.data import DataError
from gpunet.io.identity import checksums as data_checksums
from gpunet.sweep import DataSource
from gpunet.sweep.dist import run_on_worker
from gpunet.sweep.grid import Config


def test_a_worker_checks_every_task_against_the_data_it_holds(tmp_path):
    """A long-lived worker keeps the data it read; a later sweep's task on other data is refused, not run on it."""
    write_mnist_like(tmp_path / "data", 60, 20, rows=4, cols=4, seed=1)
    source = DataSource(str(tmp_path / "data"), validation_size=10)
    members = [(Config((16, 10), 3.0, 10, "float32"), 1)]
    first = data_checksums(source.load())
    assert len(run_on_worker(members, 1, "test", "cpu", source, first).records) == 1
    write_mnist_like(tmp_path / "data", 60, 20, rows=4, cols=4, seed=2)  # the folder now holds other data
    with pytest.raises(DataError, match="differs from the data the sweep started on"):
        run_on_worker(members, 1, "test", "cpu", source, data_checksums(source.load()))
    with pytest.raises(DataError, match="differs from the data the sweep started on"):
        run_on_worker(members, 1, "test", "cpu", source, first)  # refused, then read again: the new files
