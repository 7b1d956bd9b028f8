"""The command-line tests' MNIST-like data: 120 training and 40 test images of 8x8, 4 classes."""

import pytest
from helpers import write_mnist_like


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A folder of its own for each test module (the tests may write beside the data)."""
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 120, 40, rows=8, cols=8, n_classes=4)
    return folder
