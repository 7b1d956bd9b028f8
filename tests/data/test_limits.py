"""What data and sizes can be trained on: no test images, output layers and classes, parameters and data
that cannot fit (refused in one line before allocating)."""

import numpy as np
import pytest
from helpers import assert_one_line_error, book_parameters, small_mnist, train_on, write_mnist_like

import gpunet.io.find
import gpunet.io.fs
from gpunet.book import reference
from gpunet.errors import GpunetError
from gpunet.network import Network


# issue 14.1
def test_zero_test_images_is_one_line_before_training_naming_the_other_evals(tmp_path):
    folder = small_mnist(tmp_path, n_test=0)
    run = train_on(folder, "--seed", "0")
    assert_one_line_error(run, "no test images", "--eval validation", "--eval none")
    assert "Epoch" not in run.stdout
    assert train_on(folder, "--seed", "0", "--eval", "none").returncode == 0


# issue 13.9
@pytest.mark.parametrize("sizes", [[784, 30], [784, 30, 20]], ids=str)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "portable"])
def test_output_layers_wider_than_the_classes_train_like_the_book_on_targets_as_wide(tmp_path, sizes, fused):
    """The book's per-example code, given one-hot targets as wide as the output layer, computes the same epoch."""
    data = write_mnist_like(tmp_path, 60, 10)
    options = ["--seed", "0", "--sizes", ",".join(map(str, sizes)), "--dtype", "float64", "--eval", "none"]
    run = train_on(tmp_path, *options, "--save", tmp_path / "m.npz", *([] if fused else ["--no-fused"]))
    assert run.returncode == 0, run.stderr
    images, labels = data["train"]
    biases, weights, rng = book_parameters(sizes, seed=0)
    x = images.reshape(60, 784, 1) / 255.0
    y = np.eye(sizes[-1])[labels][:, :, None]
    book = reference.Network(sizes, biases=biases, weights=weights)
    book.SGD(list(zip(x, y)), 1, 10, 3.0, orders=[rng.permutation(60)])
    net = Network.load(tmp_path / "m.npz", device="cpu")
    for got, want in zip(net.weights + net.biases, book.weights + book.biases):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


def test_fewer_outputs_than_classes_is_one_line(tmp_path):
    assert_one_line_error(train_on(small_mnist(tmp_path), "--seed", "0", "--sizes", "784,30,5"), "--sizes", "10")


# issue 14.12
def test_parameters_that_cannot_fit_are_refused_before_allocating(tmp_path):
    assert_one_line_error(
        train_on(small_mnist(tmp_path), "--seed", "0", "--sizes", "784,100000000,10"), "784, 100000000, 10", "GiB"
    )
    with pytest.raises(GpunetError):
        Network([784, 10**8, 10], device="cpu")


def test_data_that_cannot_fit_on_the_device_is_refused_before_copying(tmp_path, monkeypatch):
    folder = small_mnist(tmp_path)  # 40 images: 23 KB and 8 KB of pixels to read, 127 KB as float32 on the device
    monkeypatch.setattr(gpunet.io.fs, "available_memory", lambda: 64 << 10)
    assert_one_line_error(
        train_on(folder, "--seed", "0", "--sizes", "784,1,10"), "the data as 40 (28, 28) images on cpu", "64.0 KiB"
    )
