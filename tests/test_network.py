"""The matrix-form network against independent references: the book's per-example code and finite differences."""

import numpy as np
import pytest
from helpers import book_parameters, synthetic_data

from gpunet import ConfigError, Network
from gpunet.book import reference
from gpunet.maths import backprop, feedforward, sigmoid

NETS = [[6, 4], [7, 5, 3], [8, 6, 5, 4]]  # 2, 3 and 4 layers


def host(backend, arrays):
    return [backend.to_host(a) for a in arrays]


def device(backend, arrays, dtype="float64"):
    return [backend.asarray(a, dtype=backend.dtype(dtype)) for a in arrays]


@pytest.mark.parametrize("sizes", NETS, ids=str)
def test_backprop_equals_the_books_per_example_backprop(backend, rng, sizes):
    biases, weights, _ = book_parameters(sizes, seed=1)
    x, y, _ = synthetic_data(rng, 9, sizes[0], sizes[-1])
    book = reference.Network(sizes, biases=biases, weights=weights)
    want_b = [np.zeros_like(b) for b in biases]
    want_w = [np.zeros_like(w) for w in weights]
    for xi, yi in zip(x, y):  # the book's loop over one example at a time
        db, dw = book.backprop(xi[:, None], yi[:, None])
        want_b = [s + d for s, d in zip(want_b, db)]
        want_w = [s + d for s, d in zip(want_w, dw)]

    xp = backend.xp
    X, Y = (xp.matrix_transpose(backend.asarray(a, dtype=xp.float64)) for a in (x, y))
    got_b, got_w = backprop(device(backend, weights), device(backend, biases), X, Y)
    for got, want in zip(host(backend, got_b) + host(backend, got_w), want_b + want_w):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("sizes", NETS, ids=str)
def test_backprop_equals_central_finite_differences(backend, rng, sizes):
    biases, weights, _ = book_parameters(sizes, seed=2)
    x, y, _ = synthetic_data(rng, 5, sizes[0], sizes[-1])

    def cost(bs, ws):  # C = sum over examples of ½‖y - a‖², in plain NumPy
        a = x.T
        for b, w in zip(bs, ws):
            a = 1.0 / (1.0 + np.exp(-(w @ a + b)))
        return 0.5 * np.sum((a - y.T) ** 2)

    h = 1e-6
    numeric = []
    for params in (biases, weights):
        grads = []
        for p in params:
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                up = cost(biases, weights)
                p[idx] = old - h
                down = cost(biases, weights)
                p[idx] = old
                g[idx] = (up - down) / (2 * h)
            grads.append(g)
        numeric.append(grads)

    xp = backend.xp
    X, Y = (xp.matrix_transpose(backend.asarray(a, dtype=xp.float64)) for a in (x, y))
    got_b, got_w = backprop(device(backend, weights), device(backend, biases), X, Y)
    for got, want in zip(host(backend, got_b) + host(backend, got_w), numeric[0] + numeric[1]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_maths_broadcast_over_stacked_networks(rng):
    """Two networks stacked on a leading axis give each network's own result."""
    sizes = [5, 4, 3]
    nets = [book_parameters(sizes, seed=s)[:2] for s in (3, 4)]
    x, y, _ = synthetic_data(rng, 6, 5, 3)
    stacked_b = [np.stack([n[0][i] for n in nets]) for i in range(2)]
    stacked_w = [np.stack([n[1][i] for n in nets]) for i in range(2)]
    out = feedforward(stacked_w, stacked_b, x.T)
    grads_b, grads_w = backprop(stacked_w, stacked_b, x.T, y.T)
    for k, (biases, weights) in enumerate(nets):
        np.testing.assert_allclose(out[k], reference.Network(sizes, biases, weights).feedforward(x.T), rtol=1e-12)
        one_b, one_w = backprop(weights, biases, x.T, y.T)
        for got, want in zip([g[k] for g in grads_b + grads_w], one_b + one_w):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_same_seed_gives_bit_identical_parameters_on_every_device(backend):
    sizes = [7, 5, 3]
    biases, weights, _ = book_parameters(sizes, seed=42)
    net = Network(sizes, seed=42, device=backend, dtype="float64")
    for got, want in zip(host(backend, net.biases + net.weights), biases + weights):
        assert got.dtype == np.float64 and np.array_equal(got, want)
    net32 = Network(sizes, seed=42, device=backend, dtype="float32")
    for got, want in zip(host(backend, net32.biases + net32.weights), biases + weights):
        assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-3)])
def test_an_sgd_epoch_equals_the_books_sgd(backend, rng, dtype, rtol):
    """Two epochs over 53 examples in batches of 10 (the short last batch included) match the book's code."""
    sizes, seed, n, epochs, eta = [8, 6, 4], 7, 53, 2, 3.0
    x, y, labels = synthetic_data(rng, n, sizes[0], sizes[-1])
    biases, weights, order_rng = book_parameters(sizes, seed)
    book = reference.Network(sizes, biases=biases, weights=weights)
    orders = [order_rng.permutation(n) for _ in range(epochs)]
    book.SGD([(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], epochs, 10, eta, orders)

    net = Network(sizes, seed=seed, device=backend, dtype=dtype)
    data = (backend.asarray(x, dtype=net.dtype), backend.asarray(y, dtype=net.dtype))
    test = (backend.asarray(x, dtype=net.dtype), backend.asarray(labels))
    results = net.SGD(data, epochs, 10, eta, test_data=test, callback=None)
    for got, want in zip(host(backend, net.biases + net.weights), book.biases + book.weights):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)
    book_correct = book.evaluate([(xi[:, None], li) for xi, li in zip(x, labels)])
    assert [r.epoch for r in results] == [0, 1]
    assert results[-1].correct == book_correct and results[-1].total == n


def test_sigmoid_saturates_without_warnings(backend):
    """pytest turns warnings into errors here, so an overflow in e^(-z) would fail."""
    for dtype in (backend.xp.float32, backend.xp.float64):
        z = backend.asarray(np.array([-1e4, -800.0, -100.0, 0.0, 100.0, 1e4]), dtype=dtype)
        s = backend.to_host(sigmoid(backend.xp, z))
        assert np.all(np.isfinite(s)) and s[0] == pytest.approx(0, abs=1e-37) and s[3] == 0.5 and s[-1] == 1


def test_huge_learning_rate_runs_without_warnings(backend, rng):
    x, y, labels = synthetic_data(rng, 40, 6, 3)
    net = Network([6, 5, 3], seed=0, device=backend, dtype="float32")
    data = (backend.asarray(x, dtype=net.dtype), backend.asarray(y, dtype=net.dtype))
    net.SGD(data, 3, 4, 100.0, test_data=(data[0], backend.asarray(labels)), callback=None)
    assert all(np.all(np.isfinite(p)) for p in host(backend, net.weights + net.biases))


@pytest.mark.parametrize(
    "kwargs",
    [dict(sizes=[784]), dict(sizes=[784, 0, 10]), dict(sizes=[784, 30, 10], dtype="float16")],
)
def test_bad_network_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        Network(device="cpu", **kwargs)


@pytest.mark.parametrize("epochs, batch, eta", [(-1, 10, 3.0), (1, 0, 3.0), (1, 10, -1.0), (1, 10, float("nan"))])
def test_bad_sgd_settings_are_config_errors(rng, epochs, batch, eta):
    x, y, _ = synthetic_data(rng, 10, 4, 2)
    with pytest.raises(ConfigError):
        Network([4, 2], device="cpu").SGD((x, y), epochs, batch, eta)


# ---- misuse of the Python API: one ConfigError naming what is wrong, never a wrong answer ----------------------


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        (np.eye(10)[np.arange(1000) % 10], "labels \\(n,\\)"),  # one-hot targets given as labels
        ((np.arange(1000) % 10)[:, None], "labels \\(n,\\)"),  # a column of labels: broadcast to 1000 x 1000
        (np.full(1000, np.nan), "whole numbers from 0 to 9"),
        (np.full(1000, 3.5), "whole numbers from 0 to 9"),
        (np.full(1000, 10), "whole numbers from 0 to 9"),
        (np.full(1000, -1), "whole numbers from 0 to 9"),
    ],
)
def test_evaluate_refuses_labels_it_would_miscount(labels, why):
    net = Network([784, 10], seed=0, device="cpu")
    with pytest.raises(ConfigError, match=why):
        net.evaluate((np.zeros((1000, 784)), labels))
    if "labels" in why:  # SGD's test data is held to the same shapes (its values only evaluate reads)
        train = (np.zeros((10, 784)), np.eye(10))
        with pytest.raises(ConfigError, match=why):
            net.SGD(train, 1, 10, 3.0, test_data=(np.zeros((1000, 784)), labels), callback=None)
    assert net.evaluate((np.zeros((1000, 784)), np.arange(1000) % 10)) <= 1000  # the same inputs, right labels


def test_uint8_pixels_are_refused_not_scored_as_0_to_255():
    net = Network([784, 10], seed=0, device="cpu")
    pixels = np.full((5, 784), 200, np.uint8)
    with pytest.raises(ConfigError, match="uint8 pixels"):
        net.evaluate((pixels, np.zeros(5, np.int64)))
    with pytest.raises(ConfigError, match="uint8 pixels"):
        net.SGD((pixels, np.eye(10)[np.zeros(5, int)]), 1, 5, 3.0, callback=None)


@pytest.mark.parametrize("device", [None, 0, 1.5])
def test_a_device_that_is_not_a_string_is_a_config_error(device):
    with pytest.raises(ConfigError, match="device must be cpu, cuda, cuda:N or auto"):
        Network([784, 10], device=device)


def test_a_negative_seed_names_the_seed():
    with pytest.raises(ConfigError, match="seed must be"):
        Network([784, 10], seed=-1, device="cpu")


def test_sgd_on_none_and_total_cost_of_nothing_are_config_errors():
    net = Network([784, 10], seed=0, device="cpu")
    with pytest.raises(ConfigError, match="training data must be"):
        net.SGD(None, 1, 10, 3.0, callback=None)
    with pytest.raises(ConfigError, match="training data holds no examples"):
        net.total_cost((np.zeros((0, 784)), np.zeros((0, 10))))


def test_a_validation_size_that_is_no_whole_number_is_named(mnist_like):
    from gpunet.data import load_host

    with pytest.raises(ConfigError, match="validation_size must be a whole number"):
        load_host(mnist_like("tiny"), 10.5)
