"""The book's own calls: lists (or zip iterators) of (x, y) column pairs, and ``gpunet.book.mnist_loader``."""

import re

import numpy as np
import pytest
from helpers import write_mnist_like

from gpunet import ConfigError, Network, mnist_loader
from gpunet.kernels import choose


@pytest.fixture
def small_set(tmp_path):
    write_mnist_like(tmp_path, 120, 40, seed=7)
    return tmp_path


def test_loader_gives_the_books_shapes(small_set):
    tr_d, va_d, te_d = mnist_loader.load_data(small_set, validation_size=20)
    assert [d[0].shape for d in (tr_d, va_d, te_d)] == [(100, 784), (20, 784), (40, 784)]
    assert tr_d[0].dtype == np.float32 and 0 <= tr_d[0].min() and tr_d[0].max() <= 1 and tr_d[1].dtype == np.int64
    training, validation, test = mnist_loader.load_data_wrapper(small_set, validation_size=20)
    assert all(isinstance(d, zip) for d in (training, validation, test))  # as in the Python 3 ports
    x, y = next(training)
    assert x.shape == (784, 1) and y.shape == (10, 1) and y[tr_d[1][0], 0] == 1.0 and y.sum() == 1.0
    np.testing.assert_array_equal(x[:, 0], tr_d[0][0])
    x, label = next(test)
    assert x.shape == (784, 1) and label == te_d[1][0]


def test_the_books_calls_train_on_the_fast_path_and_print_its_lines(small_set, capsys):
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper(small_set, validation_size=20)
    net = Network([784, 15, 10], seed=0)  # the book's calls, unchanged
    net.SGD(training_data, 3, 10, 3.0, test_data=test_data)
    lines = capsys.readouterr().out.splitlines()
    assert [re.match(r"Epoch (\d+): (\d+) / 40 ", line).group(1) for line in lines] == ["0", "1", "2"]

    # The same network trained on gpunet's arrays: the same kernel, the same counts, the same parameters.
    tr_d, _, te_d = mnist_loader.load_data(small_set, validation_size=20)
    same = Network([784, 15, 10], seed=0)
    results = same.SGD((tr_d[0], np.eye(10)[tr_d[1]]), 3, 10, 3.0, test_data=te_d, callback=None)
    assert [f"Epoch {r.epoch}: {r.correct} / {r.total}" for r in results] == [line.split(" (")[0] for line in lines]
    fast, _ = choose(net.backend, net.sizes, "float32", 10, None)
    assert net.kernel == same.kernel == fast.name
    for a, b in zip(net.weights + net.biases, same.weights + same.biases):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_evaluate_takes_the_books_pairs(small_set):
    _, _, test_data = mnist_loader.load_data_wrapper(small_set, validation_size=20)
    pairs = list(test_data)
    net = Network([784, 9, 10], seed=1, device="cpu", dtype="float64")
    x = np.concatenate([p[0].T for p in pairs])
    truth = [int(np.argmax(net.feedforward(np.asarray(p[0], np.float64))) == p[1]) for p in pairs]
    assert net.evaluate(pairs) == net.evaluate((x, np.array([p[1] for p in pairs]))) == sum(truth)


def test_a_list_of_the_books_training_pairs_without_test_data(rng):
    pairs = [(rng.random((4, 1)), np.eye(3)[:, [k % 3]]) for k in range(12)]
    net = Network([4, 5, 3], seed=3, device="cpu")
    assert [r.correct for r in net.SGD(pairs, 2, 5, 1.0, callback=None)] == [None, None]


@pytest.mark.parametrize(
    "training, fragment",
    [
        ([(np.zeros((5, 1)), np.zeros((3, 1)))], "every x of 4 values"),
        ([(np.zeros((4, 1)), np.zeros((2, 1)))], "every y of 3"),
        ([np.zeros((4, 1))], "list of (x, y) with y (3, 1) tuples"),
    ],
)
def test_malformed_pairs_are_one_clear_error(training, fragment):
    net = Network([4, 5, 3], seed=3, device="cpu")
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        net.SGD(training, 1, 5, 1.0, callback=None)
