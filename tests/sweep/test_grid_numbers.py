"""The sweep's grid takes the numbers Network takes: NumPy's integers as layer sizes, checked by the same rule."""

import numpy as np
import pytest

from gpunet import Network
from gpunet.errors import ConfigError
from gpunet.sweep import Sweep
from gpunet.sweep.grid import Grid


@pytest.mark.parametrize("sizes", [np.array([64, 12, 10]), [np.int64(64), 12, 10], [[np.int32(64), 12, 10]]])
def test_numpy_layer_sizes_make_the_grid_python_ints_do(sizes):
    grid = Grid.create("1", sizes=sizes)
    assert grid == Grid.create("1", sizes=[64, 12, 10])
    assert all(type(n) is int for n in grid.sizes[0])  # so the manifest's JSON holds plain numbers
    assert Network(sizes if np.ndim(sizes) == 1 else sizes[0], device="cpu").sizes == list(grid.sizes[0])


@pytest.mark.parametrize("sizes", [[[64.0, 12, 10]], [[64, True, 10]], [[64]], [[64, 0, 10]], [["64", 10]]])
def test_sizes_network_refuses_are_refused_naming_the_flag(sizes):
    with pytest.raises(ConfigError, match="^--sizes: "):
        Grid.create("1", sizes=sizes)
    with pytest.raises(ConfigError):
        Network(sizes[0], device="cpu")


def test_epochs_and_chunk_are_checked_as_train_checks_its_numbers():
    grid = Grid.create("1", epochs=np.int64(2))
    assert grid.epochs == 2 and type(grid.epochs) is int
    for bad in (0, 2.0, True):
        with pytest.raises(ConfigError, match=r"^--epochs must be a whole number >= 1 and <= 1,000,000, got "):
            Grid.create("1", epochs=bad)
    assert Sweep(grid, chunk=np.int64(3)).chunk == 3
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match=r"^--chunk must be a whole number >= 1, got "):
            Sweep(grid, chunk=bad)


def test_seeds_etas_and_mini_batches_take_what_train_takes():
    grid = Grid.create([np.int64(1), 2], etas=[np.float32(0.5), 3], batch_sizes=[np.int32(7)])
    assert grid.seeds == (1, 2) and grid.etas == (0.5, 3.0) and grid.batch_sizes == (7,)
    assert all(type(v) is int for v in (*grid.seeds, *grid.batch_sizes)) and all(type(e) is float for e in grid.etas)
    x, y = np.zeros((4, 64)), np.zeros((4, 10))
    for flag, keyword, bad in [
        ("--batch-size", "batch_sizes", 2.0),
        ("--eta", "etas", float("inf")),
        ("--seeds", "seeds", -1),
        ("--batch-size", "batch_sizes", True),
    ]:
        with pytest.raises(ConfigError, match=f"^{flag} must be "):
            Grid.create(**{"seeds": [1], keyword: [bad]})
    with pytest.raises(ConfigError, match="mini-batch size must be"):  # train's own check refuses the same
        Network([64, 10], seed=0, device="cpu").SGD((x, y), 1, 2.0, 3.0, callback=None)
