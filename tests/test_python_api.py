"""Issue 30's Python story: SGD's History, a tqdm bar, the seed a Network drew, short reprs, a picture
classified and a history plotted from Python."""

import re

import numpy as np
import pytest
from helpers import synthetic_data

import gpunet
from gpunet import ConfigError, DataError, History, Network, get_backend, read_picture


@pytest.fixture
def task(rng):
    x, y, labels = synthetic_data(rng, 60, 6, 3)
    return (x, y), (x, labels)


def test_sgd_returns_a_history_a_list_reads_with_arrays_to_plot(backend, task):
    (x, y), (_, labels) = task
    train, test = (backend.asarray(x), backend.asarray(y)), (backend.asarray(x), backend.asarray(labels))
    net = Network([6, 5, 3], seed=4, device=backend, dtype="float64")
    seen, counted = [], []

    def after(result):  # the independent count: evaluate, once an epoch
        seen.append(result)
        counted.append(net.evaluate(test))

    history = net.SGD(train, 4, 5, 3.0, test_data=test, callback=after)
    assert isinstance(history, History) and len(history) == 4 and list(history) == seen
    assert history[-1] is seen[-1] and [r.epoch for r in history[1:3]] == [1, 2] and isinstance(history[1:], History)
    np.testing.assert_array_equal(history.epoch, [0, 1, 2, 3])
    np.testing.assert_array_equal(history.accuracy, np.array(counted) / 60)
    assert history.seconds.shape == (4,) and (history.seconds >= 0).all()
    best = int(np.argmax(counted))  # the first of the best
    assert history.best is seen[best] and history.final is seen[-1]
    assert repr(history) == (
        f"History(4 epochs, best epoch {best}: {counted[best]} / 60 ({counted[best] / 60:.2%}), "
        f"final {counted[-1]} / 60 ({counted[-1] / 60:.2%}))"
    )


def test_a_history_without_test_data_says_so_in_one_line(task):
    history = Network([6, 5, 3], seed=4, device="cpu").SGD(task[0], 2, 5, 3.0, callback=None)
    assert repr(history) == "History(2 epochs, not scored (no test_data))" and history.best is None
    assert np.isnan(history.accuracy).all() and repr(History()) == "History(0 epochs)"


def test_progress_true_shows_a_tqdm_auto_bar_each_epoch(task, monkeypatch):
    import tqdm.auto

    bars = []

    class Bar:  # stands in for tqdm.auto.tqdm: the notebook's widget in Jupyter, the terminal's bar elsewhere
        def __init__(self, **style):
            self.style, self.done, self.closed = style, 0, False
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True

        def update(self, k):
            assert not self.closed
            self.done += k

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    lines = []
    net = Network([6, 5, 3], seed=4, device="cpu")
    net.SGD(task[0], 2, 5, 3.0, callback=lambda r: lines.append((r.epoch, bars[-1].closed)), progress=True)
    assert [(b.style["total"], b.style["desc"], b.done, b.closed) for b in bars] == [
        (60, "Epoch 0", 60, True),
        (60, "Epoch 1", 60, True),
    ]
    assert lines == [(0, True), (1, True)]  # each bar gone before its epoch's line


def test_a_network_made_without_a_seed_keeps_the_seed_it_drew(task):
    drawn = Network([6, 5, 3], device="cpu")
    again = Network([6, 5, 3], seed=drawn.seed, device="cpu")
    assert isinstance(drawn.seed, int) and Network([6, 5, 3], seed=7, device="cpu").seed == 7
    for net in (drawn, again):
        net.SGD(task[0], 2, 5, 3.0, callback=None)
    for a, b in zip(drawn.weights + drawn.biases, again.weights + again.biases):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_saved_runs_seed_comes_back_with_it(tmp_path):
    net = Network([6, 5, 3], seed=11, device="cpu")
    net.save(tmp_path / "m.npz", settings={"seed": 11})
    net.save(tmp_path / "bare.npz")
    assert Network.load(tmp_path / "m.npz").seed == 11 and Network.load(tmp_path / "bare.npz").seed is None


def test_network_data_and_backend_have_one_line_reprs(small_data):
    from gpunet.data import load_host, pin

    backend = get_backend("cpu")
    net = Network([784, 30, 10], seed=1, device=backend)
    net.epoch = 3
    assert repr(net) == "Network(sizes=[784, 30, 10], seed=1, device='cpu', dtype='float32', epoch=3)"
    assert repr(backend) == f"Backend(name='cpu', description={backend.description!r}, library=" + (
        f"'numpy {np.__version__}', note='')"
    )
    host = load_host(small_data, 10)  # 4x4 images
    data = pin(host, backend, net.dtype)
    n_train, n_test = len(host.train[1]), len(host.test[1])
    assert re.fullmatch(
        rf"DeviceData\({n_train} training / 10 validation / {n_test} test, 16 inputs, 10 classes, [\d.]+ MB\)",
        repr(data),
    )
    assert repr(host) == f"HostData({host.describe()})" and "\n" not in repr(host)


def test_read_picture_reads_what_predict_reads_and_the_network_classifies_it(tmp_path, scaled_digits):
    Image = pytest.importorskip("PIL.Image")
    digit = scaled_digits[0][0]
    Image.fromarray(np.uint8(np.round((1 - digit) * 255))).save(tmp_path / "ink.png")  # dark ink on paper
    x = read_picture(tmp_path / "ink.png")
    np.testing.assert_allclose(x, digit.reshape(1, 784), atol=1.5 / 255)  # MNIST's digit, light on black
    Image.fromarray(np.uint8(np.round(digit * 255))).save(tmp_path / "light.png")  # MNIST's own polarity
    np.testing.assert_array_equal(read_picture(tmp_path / "ink.png", invert=True), x)
    np.testing.assert_allclose(read_picture(tmp_path / "light.png", invert=False), x, atol=1.5 / 255)
    net = Network([784, 10, 10], seed=0, device="cpu")
    np.testing.assert_array_equal(np.asarray(net.predict(x)), np.asarray(net.predict(digit.reshape(1, 784))))
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(DataError, match=r"blank\.png: no digit: the picture has no ink"):
        read_picture(tmp_path / "blank.png")
    with pytest.raises(DataError, match=r"m\.npz: not a picture: name a \.bmp, "):
        read_picture(tmp_path / "m.npz")


def test_history_figure_draws_each_accuracy_and_stars_the_best(task, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from gpunet.plots import history_figure

    monkeypatch.chdir(tmp_path)
    nets = [Network([6, 5, 3], seed=s, device="cpu") for s in (1, 2)]
    histories = [net.SGD(task[0], 3, 5, 3.0, test_data=task[1], callback=None) for net in nets]
    fig = history_figure(*histories, labels=["one", "two"])
    lines = fig.axes[0].get_lines()
    for history, curve, star in zip(histories, lines[0::2], lines[1::2]):
        np.testing.assert_array_equal(curve.get_xdata(), [0, 1, 2])
        np.testing.assert_allclose(curve.get_ydata(), [100 * r.correct / 60 for r in history])
        assert list(star.get_xdata()) == [history.best.epoch]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][0].startswith("one: best ")
    assert list(tmp_path.iterdir()) == []  # nothing written
    with pytest.raises(ConfigError, match="nothing to plot: no epoch was scored"):
        history_figure(nets[0].SGD(task[0], 1, 5, 3.0, callback=None))


def test_the_python_story_is_public():
    assert {"History", "read_picture"} <= set(gpunet.__all__)
