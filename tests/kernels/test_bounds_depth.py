"""Issue 22.5: networks of thousands of layers train (in the portable kernel) instead of ending in a numba
traceback; numba, which compiles a loop per depth, says its limit in one line when asked for more."""

import numpy as np
import pytest
from helpers import assert_one_line_error, book_parameters, cli, synthetic_data, write_mnist_like

from gpunet import Network, get_backend
from gpunet.book import reference
from gpunet.kernels import choose
from gpunet.kernels import numba_cpu as numba_kernel

MAX_LAYERS = 64  # gpunet.kernels.numba_cpu.MAX_LAYERS, as docs/reliability.md states it


def _deep(layers, width=2, n_in=784, n_out=10):
    return [n_in] + [width] * (layers - 1) + [n_out]


@pytest.mark.parametrize("layers", [MAX_LAYERS + 1, 10_000])
def test_the_registry_picks_the_portable_kernel_past_numbas_depth(layers):
    kernel, _ = choose(get_backend("cpu"), _deep(layers), "float32", 10)
    assert kernel.name == "portable"


@pytest.mark.skipif(bool(numba_kernel.NumbaEpoch.unusable()), reason="numba is not usable here")
def test_numba_is_still_chosen_within_its_depth():
    assert choose(get_backend("cpu"), _deep(3), "float32", 10)[0].name == "numba"
    assert numba_kernel.MAX_LAYERS == MAX_LAYERS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 20, 10)
    return folder


def test_train_of_a_thousand_layers_trains(data):
    run = cli(
        "train",
        "--device",
        "cpu",
        "--data-dir",
        data,
        "--validation-size",
        "0",
        "--epochs",
        "1",
        "--sizes",
        ",".join(map(str, _deep(1000))),
        "--batch-size",
        "10",
    )
    assert run.returncode == 0, run.stderr[-500:]
    assert "Epoch 0: " in run.stdout and "portable" in run.stdout


def test_sweep_of_a_thousand_layers_trains(data):
    run = cli(
        "sweep",
        "--seeds",
        "1,2",
        "--device",
        "cpu",
        "--data-dir",
        data,
        "--validation-size",
        "0",
        "--epochs",
        "1",
        "--sizes",
        ",".join(map(str, _deep(1000))),
    )
    assert run.returncode == 0, run.stderr[-500:]
    assert "seed 2: best" in run.stdout


def test_numba_asked_for_too_deep_a_network_is_one_line(data):
    run = cli(
        "train",
        "--device",
        "cpu",
        "--data-dir",
        data,
        "--validation-size",
        "0",
        "--epochs",
        "1",
        "--kernel",
        "numba",
        "--sizes",
        ",".join(map(str, _deep(MAX_LAYERS + 1))),
    )
    assert_one_line_error(run, "kernel numba", f"at most {MAX_LAYERS} layers", str(MAX_LAYERS + 1))


def test_a_deep_network_trains_as_the_books_code_does(rng):
    """70 layers (past numba's limit) of width 3, 2 epochs, float64: the book's per-example code."""
    sizes = [6] + [3] * 69 + [2]
    x, y, _ = synthetic_data(rng, 12, 6, 2)
    net = Network(sizes, seed=5, device="cpu", dtype="float64")
    net.SGD((x, y), 2, 5, 3.0, callback=None)
    assert net.kernel == "portable"
    biases, weights, generator = book_parameters(sizes, 5)
    book = reference.Network(sizes, biases=biases, weights=weights)
    orders = [generator.permutation(len(x)) for _ in range(2)]
    book.SGD([(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], 2, 5, 3.0, orders)
    for got, want in zip(net.weights + net.biases, book.weights + book.biases):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
