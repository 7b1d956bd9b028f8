"""A learning rate or data that overflows the dtype: refused, or stopped in one line once the parameters are
inf or NaN; never a RuntimeWarning (the suite makes gpunet's warnings errors)."""

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, synthetic_data, train_on, write_mnist_like

from gpunet import Network
from gpunet.errors import ConfigError


@pytest.fixture
def data(tmp_path):
    write_mnist_like(tmp_path / "data", 100, 20, rows=4, cols=4)
    return tmp_path / "data"


@pytest.mark.parametrize("kernel", ["numba", "portable"])
def test_an_eta_the_dtype_cannot_hold_is_one_line(data, tmp_path, kernel):
    checkpoint = tmp_path / "ck.npz"
    run = train_on(
        data, "--sizes", "16,8,10", "--eta", "1e308", "--kernel", kernel, "--checkpoint", checkpoint, epochs=2
    )
    assert_one_line_error(run, "eta 1e+308 does not fit float32")
    assert "Warning" not in run.stderr and not checkpoint.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no lock, no .part


@pytest.mark.parametrize("kernel", ["numba", "portable"])
def test_eta_1e308_in_float64_trains_without_a_warning(data, kernel):
    run = train_on(data, "--sizes", "16,8,10", "--eta", "1e308", "--kernel", kernel, "--dtype", "float64", epochs=2)
    assert run.returncode == 0 and run.stderr == "", run.stderr


@pytest.mark.parametrize("kernel", ["numba", "portable"])
def test_parameters_that_become_non_finite_stop_the_training_in_one_error(kernel):
    x, y, _ = synthetic_data(np.random.default_rng(0), 40, 6, 3)
    x[7, 2] = np.inf  # a product of inf with a zero: NaN in the first epoch's updates
    net = Network([6, 4, 3], seed=0, device="cpu", dtype="float64")
    epochs = []
    with pytest.raises(ConfigError, match="overflowed to inf or NaN in epoch 0"):
        net.SGD((x, y), 3, 5, 3.0, callback=epochs.append, kernel=kernel)
    assert epochs == [] and net.epoch == 0  # the bad epoch is neither reported nor counted


def test_a_sweep_refuses_an_eta_its_dtype_cannot_hold(data):
    run = cli(
        "sweep",
        "--seeds",
        "1",
        "--device",
        "cpu",
        "--sizes",
        "16,8,10",
        "--epochs",
        "1",
        "--eta",
        "3,1e308",
        "--validation-size",
        "0",
        "--data-dir",
        data,
    )
    assert_one_line_error(run, "eta 1e+308 does not fit float32")
