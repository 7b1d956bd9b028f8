"""Settings, the one check of numbers: NumPy's integers and floats are numbers too; bools and NaN are not."""

from pathlib import Path

import numpy as np
import pytest
from helpers import book_parameters, synthetic_data

from gpunet import Network
from gpunet.book.reference import Network as BookNetwork
from gpunet.errors import ConfigError
from gpunet.settings import BOOK, COUNT, POSITIVE_INT, POSITIVE_REAL, Settings, check, check_sizes, checked

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), np.int32(3)])
def test_numpy_integers_are_whole_numbers(value):
    assert check("n", value, POSITIVE_INT) == 3 and type(check("n", value, POSITIVE_INT)) is int


@pytest.mark.parametrize("value", [3.0, 3, np.float32(3.0), np.float64(3.0), np.int64(3)])
def test_numpy_floats_are_real_numbers(value):
    assert check("eta", value, POSITIVE_REAL) == 3.0 and type(check("eta", value, POSITIVE_REAL)) is float


@pytest.mark.parametrize(
    "value, interval",
    [
        (True, POSITIVE_INT),
        (np.bool_(True), POSITIVE_INT),
        (3.0, POSITIVE_INT),
        (np.float64(3.0), COUNT),
        ("3", COUNT),
        (-1, COUNT),
        (0, POSITIVE_INT),
        (0.0, POSITIVE_REAL),
        (np.float32("nan"), POSITIVE_REAL),
        (float("inf"), POSITIVE_REAL),
        (None, POSITIVE_REAL),
        (1 + 2j, POSITIVE_REAL),
    ],
)
def test_what_is_not_in_the_interval_is_one_named_error(value, interval):
    with pytest.raises(ConfigError, match="^n must be "):
        check("n", value, interval)


def test_sizes_accept_numpy_integers_and_an_array():
    assert check_sizes(np.array([4, 3, 2])) == [4, 3, 2]
    assert check_sizes((np.int64(4), np.int32(2))) == [4, 2]
    for bad in ([4], [4, True], [4, 2.0], 5, [4, 0]):
        with pytest.raises(ConfigError, match="sizes"):
            check_sizes(bad)


def test_the_book_settings_are_chapter_1s_run():
    assert (BOOK.sizes, BOOK.epochs, BOOK.batch_size, BOOK.eta, BOOK.dtype) == ((784, 30, 10), 30, 10, 3.0, "float32")


def test_settings_are_kept_as_python_values_and_frozen():
    s = Settings(sizes=np.array([4, 3]), epochs=np.int64(2), eta=np.float32(0.5), seed=np.uint8(7))
    assert s.sizes == (4, 3) and type(s.epochs) is int and type(s.eta) is float and type(s.seed) is int
    assert s.record()["sizes"] == [4, 3] and Settings(seed=None).seed is None
    assert Settings(eta=1e308, dtype="float64").eta == 1e308  # float64 holds it
    with pytest.raises(AttributeError):
        s.eta = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_size": 0}, "^mini-batch size must be a whole number >= 1, got 0$"),
        ({"eta": -1.0}, r"^eta \(the learning rate\) must be a finite number > 0, got -1.0$"),
        ({"dtype": "float16"}, "^dtype must be float32 or float64, got 'float16'$"),
        ({"epochs": 10**7}, "^epochs must be a whole number >= 0 and <= 1,000,000, got 10000000$"),
        ({"seed": -1}, "^seed must be a whole number >= 0, got -1$"),
        ({"eta": 1e308}, "^eta 1e[+]308 does not fit float32"),
    ],
)
def test_a_setting_out_of_its_constraint_is_one_named_error(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**values)


def test_checked_names_the_setting_and_raises_the_callers_error():
    with pytest.raises(ValueError, match="^batch_size must be "):
        checked({**vars(BOOK), "batch_size": True}, str, ValueError)


def test_network_and_sgd_take_numpy_numbers_and_train_like_the_book(rng):
    sizes = np.array([5, 4, 3])
    x, y, _ = synthetic_data(rng, 23, 5, 3)
    net = Network(sizes, seed=np.int64(7), device="cpu", dtype="float64")
    net.SGD((x, y), np.int64(2), np.int32(6), np.float32(0.5), callback=None)
    assert net.sizes == [5, 4, 3] and all(type(n) is int for n in net.sizes) and net.epoch == 2
    biases, weights, book_rng = book_parameters([5, 4, 3], 7)
    book = BookNetwork([5, 4, 3], biases, weights)
    data = [(x[i].reshape(-1, 1), y[i].reshape(-1, 1)) for i in range(23)]
    book.SGD(data, 2, 6, float(np.float32(0.5)), [book_rng.permutation(23) for _ in range(2)])
    for got, want in zip(net.weights + net.biases, book.weights + book.biases):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args", [(True, 10, 3.0), (1, np.bool_(True), 3.0), (1, 10, np.float64("nan")), (1.0, 10, 3)])
def test_sgd_refuses_bools_nan_and_fractional_counts(rng, args):
    x, y, _ = synthetic_data(rng, 4, 2, 2)
    with pytest.raises(ConfigError):
        Network([2, 2], seed=0, device="cpu").SGD((x, y), *args, callback=None)


def test_the_docs_say_what_a_seed_makes_the_same_across_devices():
    network = (ROOT / "gpunet" / "network.py").read_text()
    docs = (ROOT / "docs" / "python.md").read_text()
    assert "the same numbers on every device" not in network
    for text in (network, docs):
        flat = " ".join(text.replace("#", " ").split())
        assert "same starting point" in flat and "order of examples" in flat and "bit-identical" in flat
