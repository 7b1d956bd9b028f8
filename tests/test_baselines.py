"""`gpunet baselines`: chapter 1's random guessing, average darkness and SVM, checked against the book's code."""

import json
import sys
from collections import defaultdict

import numpy as np
import pytest
from helpers import MNIST, assert_one_line_error, cli, write_mnist_like

from gpunet import Network
from gpunet.book import baselines as b


def book_darkness_guesses(train_images, train_labels, test_images):
    """The book's ``mnist_average_darkness.py`` as written (dictionaries, Python sums), ported to Python 3."""
    digit_counts, darknesses = defaultdict(int), defaultdict(float)
    for image, digit in zip(train_images, train_labels):
        digit_counts[int(digit)] += 1
        darknesses[int(digit)] += sum(float(p) for p in image)
    avgs = {digit: darknesses[digit] / n for digit, n in sorted(digit_counts.items())}
    guesses = []
    for image in test_images:
        darkness = sum(float(p) for p in image)
        distances = {k: abs(v - darkness) for k, v in avgs.items()}
        guesses.append(min(distances, key=distances.get))
    return np.array(guesses)


def test_darkness_on_a_set_with_a_known_answer():
    # Class 0 images have darkness 10, class 1 darkness 100 and 102 (mean 101), class 2 darkness 30; class 3 none.
    train = np.array([[5, 5, 0, 0], [10, 0, 0, 0], [50, 50, 0, 0], [51, 51, 0, 0], [10, 10, 10, 0]], np.uint8)
    labels = np.array([0, 0, 1, 1, 2])
    averages = b.average_darknesses(train, labels, 4)
    assert averages[:3].tolist() == [10.0, 101.0, 30.0] and np.isnan(averages[3])
    # darkness 12 -> 0; 60 -> 2 (30 away, 1 is 41); 70 -> 1 (31 away, 2 is 40); 20 -> a tie of 0 and 2: the lower;
    # 255 -> 1 (class 3, never seen in training, is never guessed)
    test = np.array([[12, 0, 0, 0], [60, 0, 0, 0], [70, 0, 0, 0], [20, 0, 0, 0], [255, 0, 0, 0]], np.uint8)
    assert b.guess_by_darkness(averages, test).tolist() == [0, 2, 1, 0, 1]


def test_darkness_is_the_books_on_a_random_set(rng):
    train, test = rng.integers(0, 256, (300, 16), dtype=np.uint8), rng.integers(0, 256, (100, 16), dtype=np.uint8)
    labels = rng.integers(0, 10, 300)
    ours = b.guess_by_darkness(b.average_darknesses(train, labels, 10), test)
    np.testing.assert_array_equal(ours, book_darkness_guesses(train, labels, test))


def test_random_guessing_expects_one_in_classes_and_draws_reproducibly():
    labels = np.arange(1000) % 10
    expected, draw = b.random_guess(labels, 10, seed=3)
    assert expected == 100.0
    assert draw.min() >= 0 and draw.max() <= 9
    np.testing.assert_array_equal(draw, b.random_guess(labels, 10, seed=3)[1])
    assert 50 < int(np.sum(draw == labels)) < 150  # binomial(1000, 0.1): sd 9.5


def test_svm_on_a_small_mnist_subset():
    pytest.importorskip("sklearn")
    from gpunet.data import load_host

    host = load_host(MNIST, 0)
    (x, y), (tx, ty) = (host.train[0][:600], host.train[1][:600]), (host.test[0][:200], host.test[1][:200])
    for book in (False, True):
        correct = int(np.sum(b.svm_predict((x, y), tx, book) == ty))
        assert correct >= 140, (book, correct)  # 600 MNIST images: 179 (today), 162 (2015); chance: 20
    assert b.svm_classifier(True, 784).gamma == 1 / 784 and b.svm_classifier(False, 784).gamma == "scale"


@pytest.fixture
def small_set(tmp_path):
    return tmp_path / "data", write_mnist_like(tmp_path / "data", 200, 60, seed=4)


def test_cli_rows_match_the_books_code(small_set):
    folder, sets = small_set
    run = cli("baselines", "--data-dir", folder, "--validation-size", 0, "--skip-svm", "--json", "--seed", 5)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    rows = {r["method"]: r for r in out["rows"]}
    (train_images, train_labels), (test_images, test_labels) = sets["train"], sets["t10k"]
    flat = lambda images: images.reshape(len(images), -1)
    book = book_darkness_guesses(flat(train_images), train_labels, flat(test_images))
    assert rows["average darkness"]["correct"] == int(np.sum(book == test_labels))
    assert rows["random guessing (expected)"]["correct"] == 6.0 and out["test"] == 60 and out["train"] == 200
    assert "random guessing (one draw, seed 5)" in rows
    assert not any(r["method"].startswith("network") for r in out["rows"])  # not MNIST: no README figures
    assert all(r["book"] == "" for r in out["rows"])  # nor the book's


def test_the_ticker_shows_the_elapsed_time_on_a_terminal():
    import io
    import time

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with b.ticker("gpunet: SVM", screen, every=0.01):
        time.sleep(0.1)
    assert "\rgpunet: SVM: 0:00 elapsed" in screen.getvalue() and screen.getvalue().endswith("\n")


def test_cli_text_table_labels_the_readme_figures():
    run = cli("baselines", "--data-dir", MNIST, "--skip-svm")
    assert run.returncode == 0, run.stderr
    assert "average darkness" in run.stdout and "2,225 / 10,000  22.25 %" in run.stdout
    assert "network [784, 30, 10], median of 100 seeds' best epochs" in run.stdout
    assert "* README: gpunet sweep --seeds 1-100" in run.stdout


def test_cli_scores_a_saved_model(small_set, tmp_path):
    folder, sets = small_set
    net = Network([784, 7, 10], seed=2, device="cpu", dtype="float64")
    net.save(tmp_path / "m.npz")
    run = cli(
        "baselines", "--data-dir", folder, "--validation-size", 0, "--skip-svm", "--json", "--model", tmp_path / "m.npz"
    )
    assert run.returncode == 0, run.stderr
    row = json.loads(run.stdout)["rows"][-1]
    images, labels = sets["t10k"]
    a = images.reshape(len(images), -1).T / 255.0  # the book's feedforward, on columns
    for w, bias in zip(net.weights, net.biases):
        a = 1 / (1 + np.exp(-(np.asarray(w) @ a + np.asarray(bias))))
    assert row["correct"] == int(np.sum(np.argmax(a, axis=0) == labels)) and row["total"] == 60
    assert row["method"].startswith("network [784, 7, 10] (m.npz")


def test_cli_reads_a_sweep_folder(tmp_path):
    from gpunet.sweep import Config, NetworkRecord
    from gpunet.sweep.outputs import write

    config = Config((784, 30, 10), 3.0, 10, "float32")
    records = [NetworkRecord(config, s, c, 60, 1.0) for s, c in ((1, [30, 41, 40]), (2, [20, 25, 50]), (3, [9, 9, 9]))]
    (tmp_path / "sw").mkdir()
    write(tmp_path / "sw", {"kind": "sweep", "settings": {"grid": {"eval": "test"}}}, records, "test")
    run = cli("baselines", "--data-dir", MNIST, "--skip-svm", "--json", "--sweep", tmp_path / "sw")
    assert run.returncode == 0, run.stderr
    median, best = json.loads(run.stdout)["rows"][-2:]
    assert median["correct"] == 41 and "median of 3 seeds" in median["method"]
    assert best["correct"] == 50 and "seed 2, epoch 2" in best["method"] and best["book"].startswith("95.42 %")


def test_missing_scikit_learn_is_one_line_naming_the_extra(small_set, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.svm", None)
    assert_one_line_error(cli("baselines", "--data-dir", small_set[0]), "gpunet[svm]", "--skip-svm")


def test_a_folder_that_is_no_sweep_is_one_line(tmp_path, small_set):
    run = cli("baselines", "--skip-svm", "--data-dir", small_set[0], "--sweep", tmp_path)
    assert_one_line_error(run, "sweep.jsonl")
