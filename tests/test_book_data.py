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
    assert [len(d) for d in (training, validation, test)] == [100, 20, 40]  # lists, as Python 2's zip made
    x, y = training[0]
    assert x.shape == (784, 1) and y.shape == (10, 1) and y[tr_d[1][0], 0] == 1.0 and y.sum() == 1.0
    np.testing.assert_array_equal(x[:, 0], tr_d[0][0])
    x, label = test[0]
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


def test_the_chapters_session_reuses_training_data_for_three_experiments(small_set):
    # The chapter trains [784, 30, 10], then [784, 100, 10], then another eta, all on the same training_data.
    training_data, _, test_data = mnist_loader.load_data_wrapper(small_set, validation_size=20)
    for sizes, eta in (([784, 30, 10], 3.0), ([784, 100, 10], 3.0), ([784, 30, 10], 0.001)):
        net = Network(sizes, seed=2, device="cpu")
        before = [np.asarray(w).copy() for w in net.weights]
        results = net.SGD(training_data, 1, 10, eta, test_data=test_data, callback=None)
        assert [r.total for r in results] == [40]  # scored on every test image, every time
        assert all(np.abs(np.asarray(w) - b).max() > 0 for w, b in zip(net.weights, before))  # and trained
        assert net.evaluate(test_data) == results[-1].correct


def test_an_exhausted_zip_is_refused_in_one_line(rng):
    pairs = [(rng.random((4, 1)), np.eye(3)[:, [k % 3]]) for k in range(12)]
    net = Network([4, 5, 3], seed=3, device="cpu")
    training = zip(*zip(*pairs))  # the book's Python 3 ports: a zip, read once
    net.SGD(training, 1, 5, 1.0, callback=None)
    for call in (
        lambda: net.SGD(training, 1, 5, 1.0, callback=None),
        lambda: net.total_cost(training),
    ):
        with pytest.raises(
            ConfigError, match=r"^training data is an iterator with nothing left \(a zip is read once"
        ) as e:
            call()
        assert "\n" not in str(e.value) and "list(training_data)" in str(e.value)
    labels = zip([p[0] for p in pairs], [k % 3 for k in range(12)])
    assert 0 <= net.evaluate(labels) <= 12
    with pytest.raises(ConfigError, match=r"^test data is an iterator with nothing left"):
        net.evaluate(labels)


@pytest.mark.parametrize(
    "call",
    [
        lambda net: net.SGD([], 1, 10, 3.0, test_data=[(np.zeros((4, 1)), 0)], callback=None),
        lambda net: net.SGD([(np.zeros((4, 1)), np.zeros((3, 1)))], 1, 10, 3.0, test_data=[], callback=None),
        lambda net: net.SGD((np.zeros((0, 4)), np.zeros((0, 3))), 1, 10, 3.0, callback=None),
        lambda net: net.evaluate([]),
        lambda net: net.evaluate((np.zeros((0, 4)), np.zeros(0, np.int64))),
        lambda net: net.total_cost([]),
    ],
    ids=["sgd-no-training", "sgd-no-test", "sgd-empty-arrays", "evaluate-list", "evaluate-arrays", "total-cost"],
)
def test_empty_data_is_refused_not_counted_as_zero(call):
    with pytest.raises(ConfigError, match=r"^(training|test) data holds no examples: give at least one$"):
        call(Network([4, 5, 3], seed=3, device="cpu"))
