"""A sweep of many configurations keeps one copy of the data per (dtype, output width) at a time, and releases each
stack's prepared kernel (numba's holds the inputs in compressed rows) when the stack is done."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import write_mnist_like

import gpunet.sweep.runner
import gpunet.sweep.stacks
from gpunet.kernels import numba_cpu
from gpunet.sweep import DataSource, Grid, Sweep

PEAK = """
import sys
from gpunet.cli import main
sizes = [a for k in range(int(sys.argv[2])) for a in ("--sizes", f"784,{3 + k},10")]
status = main(["sweep", "--seeds", "1", "--epochs", "1", "--device", "cpu", "--kernel", sys.argv[3],
               "--validation-size", "0", "--data-dir", sys.argv[1], *sizes])
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
sys.exit(status)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 6000, 10)  # random pixels: numba's compressed rows hold all 4.7 million (56 MB)
    return folder


def _peak(data, configurations, kernel):
    run = subprocess.run(
        [sys.executable, "-c", PEAK, str(data), str(configurations), kernel],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-1000:]
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(bool(numba_cpu.NumbaEpoch.unusable()), reason="numba is not usable here")
def test_memory_does_not_grow_with_the_sizes_configurations(data):
    """2 and 8 configurations of one output width: main kept each one's kernel (+56 MB a configuration here)."""
    two, eight = _peak(data, 2, "numba"), _peak(data, 8, "numba")
    assert eight - two < 40 << 20, (two / 1e6, eight / 1e6)


def test_one_pinned_copy_of_the_data_at_a_time(data, monkeypatch):
    """Sizes of three output widths, each in two dtypes: each (dtype, width) pinned once, and dropped before the
    next is pinned."""
    pinned, alive = [], []
    pin = gpunet.sweep.stacks.pin

    def counting_pin(host, backend, dtype, outputs):
        pinned.append((np.dtype(dtype).name, outputs))
        alive.append(len(holder[0]) if holder else 0)
        return pin(host, backend, dtype, outputs)

    holder: list = []
    pin_for = gpunet.sweep.stacks.pin_for

    def watching_pin_for(store, *args):
        holder[:] = [store]
        return pin_for(store, *args)

    monkeypatch.setattr(gpunet.sweep.stacks, "pin", counting_pin)
    monkeypatch.setattr(gpunet.sweep.runner, "pin_for", watching_pin_for)
    sizes = [[784, 3, 10], [784, 3, 11], [784, 4, 10], [784, 3, 12], [784, 5, 11]]
    grid = Grid.create("1,2", sizes=sizes, dtypes="float32,float64", epochs=1)
    Sweep(grid, DataSource(str(data), validation_size=0), device="cpu", chunk=1, kernel="portable").run()
    assert sorted(pinned) == sorted({(d, w) for d in ("float32", "float64") for w in (10, 11, 12)})
    assert alive == [0] * len(pinned)  # nothing else held when each is pinned
