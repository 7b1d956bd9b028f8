"""The book's ``mnist_loader``: the same two functions and shapes, reading MNIST where ``gpunet train`` finds it.

    from gpunet import Network, mnist_loader
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    net = Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

The data (the book's ``mnist.pkl.gz`` or the four IDX files) is found, or downloaded, as ``gpunet train`` finds
it; the last 10,000 training images are validation, as in the book's file; pixels are floats in [0, 1].
"""

from __future__ import annotations

import numpy as np

from .. import data
from ..io.idx import unit


def load_data(data_dir=None, validation_size: int = 10_000):
    """(training_data, validation_data, test_data), each (images (n, 784) float32 in [0, 1], labels (n,) int64):
    50,000 / 10,000 / 10,000 images for MNIST (the last ``validation_size`` training images are validation)."""
    host = data.load(data_dir, validation_size=validation_size, download=True)
    splits = (host.train, host.validation, host.test)
    return tuple((unit(images, np.float32), labels.astype(np.int64)) for images, labels in splits)


def load_data_wrapper(data_dir=None, validation_size: int = 10_000):
    """The book's network format: ``training_data`` pairs (x (784, 1), one-hot y (10, 1)); ``validation_data``
    and ``test_data`` pairs (x (784, 1), label). Each is a list, as the book's Python 2 ``zip`` returned: the
    chapter's session trains on the same ``training_data`` again and again (a Python 3 ``zip`` is read once).
    """
    tr_d, va_d, te_d = load_data(data_dir, validation_size)
    n_classes = int(max(tr_d[1].max(initial=0), va_d[1].max(initial=0))) + 1
    columns = lambda images: [np.reshape(x, (len(x), 1)) for x in images]  # noqa: E731
    training_data = list(zip(columns(tr_d[0]), [vectorized_result(y, n_classes) for y in tr_d[1]]))
    validation_data = list(zip(columns(va_d[0]), va_d[1]))
    test_data = list(zip(columns(te_d[0]), te_d[1]))
    return training_data, validation_data, test_data


def vectorized_result(j, n: int = 10):
    """The one-hot column (n, 1) with 1.0 in place j: the desired output for digit j."""
    e = np.zeros((n, 1))
    e[j] = 1.0
    return e
