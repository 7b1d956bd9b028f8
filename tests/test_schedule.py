"""Chapter 3's two rules (early stopping, halving eta down to 1/128): against the rules written out here, one
epoch at a time, in Network.SGD and in `gpunet train`, across a resume."""

import json

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, synthetic_data, train_on, write_mnist_like

from gpunet import ConfigError, Network
from gpunet.book.schedule import Schedule


def expected_stop(counts, n):
    """The epoch after which the no-improvement-in-n rule stops a run that scored ``counts`` (None: never)."""
    for e in range(len(counts)):
        if e >= n and max(counts[e - n + 1 : e + 1]) <= max(counts[: e - n + 1]):
            return e
    return None


def data(seed=0):
    x, y, labels = synthetic_data(np.random.default_rng(seed), 40, 6, 3)
    return (x, y), (x[:20], labels[:20])


def test_the_schedule_counts_as_the_chapter_says():
    s = Schedule()
    said = [s.after(c, stop_after=3) for c in (5, 7, 7, 6, 8, 8, 8, 8)]
    assert said.index(next(w for w in said if w)) == 7 and "in 3 epochs" in said[7]
    s, etas = Schedule(), []
    for c in [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]:  # a stall: a halving every second epoch after the first
        etas.append(s.eta(1.0))
        if s.after(c, halve_eta=2):
            break
    assert etas == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 1 / 16, 1 / 16, 1 / 32, 1 / 32, 1 / 64, 1 / 64]
    assert s.halvings == 7 and s.eta(1.0) == 1 / 128


@pytest.mark.parametrize("n", [1, 2])
def test_sgd_stops_where_the_rule_says_on_the_counts_of_an_unstopped_run(n):
    training, test = data()
    straight = Network([6, 5, 3], seed=4, device="cpu").SGD(training, 12, 10, 0.5, test, callback=None)
    counts = [r.correct for r in straight]
    stop = expected_stop(counts, n)
    assert stop is not None, counts  # the data stalls within 12 epochs, or the test proves nothing
    ruled = Network([6, 5, 3], seed=4, device="cpu").SGD(training, 12, 10, 0.5, test, stop_after=n, callback=None)
    assert [r.correct for r in ruled] == counts[: stop + 1] and ruled[-1].stopped and not ruled[-2].stopped


def test_sgd_halves_eta_as_a_loop_of_single_epochs_would():
    training, test = data(1)
    ruled = Network([6, 5, 3], seed=2, device="cpu", dtype="float64")
    history = ruled.SGD(training, 40, 10, 2.0, test, halve_eta=1, callback=None)
    by_hand, best, calm, eta = Network([6, 5, 3], seed=2, device="cpu", dtype="float64"), -1, 0, 2.0
    for r in history:
        assert r.eta == eta
        (got,) = by_hand.SGD(training, 1, 10, eta, test, callback=None)
        assert got.correct == r.correct
        best, calm = (got.correct, 0) if got.correct > best else (best, calm + 1)
        if calm >= 1:
            eta, calm = eta / 2, 0
    assert eta == 2.0 / 128 and history[-1].stopped  # it ran to the end of the schedule
    for a, b in zip(ruled.weights, by_hand.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_rules_need_scored_epochs():
    training, _ = data()
    with pytest.raises(ConfigError, match="test_data"):
        Network([6, 5, 3], seed=1, device="cpu").SGD(training, 2, 10, 0.5, stop_after=2, callback=None)


def test_train_stops_says_why_in_the_console_and_the_log_and_a_resume_goes_on_with_the_rules(tmp_path):
    folder = tmp_path / "data"
    write_mnist_like(folder, 60, 20, rows=4, cols=4, n_classes=3)
    flags = ("--sizes", "16,4,3", "--seed", "5", "--eta", "4", "--halve-eta", "1", "--stop-after", "3")
    straight = train_on(folder, *flags, "--log", tmp_path / "a.jsonl", epochs=40)
    assert straight.returncode == 0, straight.stderr
    lines = [json.loads(l) for l in (tmp_path / "a.jsonl").read_text().splitlines()[1:]]
    assert lines[-1]["stopped"] and f"stopped after epoch {lines[-1]['epoch']}: " in straight.stdout
    assert "eta 4 |" in straight.stdout and {l["eta"] for l in lines} > {4.0, 2.0}
    stop = lines[-1]["epoch"]
    assert stop >= 3, "stopped too soon to resume in the middle"
    half = train_on(folder, *flags, "--checkpoint", tmp_path / "c.npz", "--log", tmp_path / "b.jsonl", epochs=2)
    assert half.returncode == 0, half.stderr
    resumed = cli("train", "--resume", tmp_path / "c.npz", "--epochs", 40, "--data-dir", folder)
    assert resumed.returncode == 0, resumed.stderr
    again = [json.loads(l) for l in (tmp_path / "b.jsonl").read_text().splitlines()]
    again = [l for l in again if l["type"] == "epoch"]
    keep = ("epoch", "correct", "eta", "stopped")
    assert [{k: l.get(k) for k in keep} for l in again] == [{k: l.get(k) for k in keep} for l in lines]
    done = cli("train", "--resume", tmp_path / "c.npz", "--epochs", 41, "--data-dir", folder)
    assert done.returncode == 0 and f"stopped after epoch {stop}" in done.stderr, done.stderr
    changed = cli("train", "--resume", tmp_path / "c.npz", "--stop-after", "9", "--data-dir", folder)
    assert_one_line_error(changed, "--stop-after comes from the checkpoint")
    assert_one_line_error(
        train_on(folder, "--sizes", "16,4,3", "--stop-after", "2", "--eval", "none"), "leave out --eval none"
    )


def test_train_monitors_the_training_data_and_the_evaluation_cost_and_plot_draws_them(tmp_path):
    folder = tmp_path / "data"
    images = write_mnist_like(folder, 40, 20, rows=4, cols=4, n_classes=3)
    flags = ("--sizes", "16,4,3", "--seed", "1", "--eta", "1", "--cost", "cross-entropy", "--lmbda", "2")
    run = train_on(folder, *flags, "--monitor", "all", "--log", tmp_path / "r.jsonl", "--save", tmp_path / "m.npz")
    assert run.returncode == 0, run.stderr
    (entry,) = [json.loads(l) for l in (tmp_path / "r.jsonl").read_text().splitlines()[1:]]
    net = Network.load(tmp_path / "m.npz", device="cpu")  # the network after epoch 0, as the entry measured it
    w, b = [np.asarray(a, np.float64) for a in net.weights], [np.asarray(a, np.float64) for a in net.biases]

    def outputs(x):  # the book's feedforward, one column per example
        a = x.reshape(len(x), -1).T / 255.0
        for wl, bl in zip(w, b, strict=True):
            a = 1 / (1 + np.exp(-(wl @ a + bl)))
        return a

    def cost(x, labels):  # eq. 63 per example, plus L2's 1/2 (lambda/n) sum w^2 (eq. 85)
        a, y = outputs(x), np.eye(3)[labels].T
        c = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / len(labels)
        return c + 0.5 * 2 / len(labels) * sum(np.sum(wl**2) for wl in w)

    (train_x, train_labels), (test_x, test_labels) = images["train"], images["t10k"]
    assert entry["training_cost"] == pytest.approx(cost(train_x, train_labels), rel=1e-4)
    assert entry["evaluation_cost"] == pytest.approx(cost(test_x, test_labels), rel=1e-4)
    assert entry["training_correct"] == int(np.sum(outputs(train_x).argmax(axis=0) == train_labels))
    assert f"training accuracy {entry['training_accuracy']:.2%} | evaluation cost" in run.stdout
    drawn = cli("plot", tmp_path / "r.jsonl", "-o", tmp_path / "r.png")
    assert drawn.returncode == 0 and (tmp_path / "r.png").stat().st_size > 0, drawn.stderr
    refused = train_on(folder, *flags, "--monitor", "evaluation-cost", "--eval", "none")
    assert_one_line_error(refused, "--monitor evaluation-cost needs the --eval data")
    assert_one_line_error(train_on(folder, "--monitor", "test-cost"), "--monitor", "expected training-cost")


def test_network2s_early_stopping_n_stops_where_the_rule_says(capsys):
    from gpunet import network2

    (x, y), (tx, labels) = data()
    training = [(a[:, None], b[:, None]) for a, b in zip(x, y, strict=True)]
    evaluation = [(a[:, None], int(t)) for a, t in zip(tx, labels, strict=True)]
    counts = network2.Network([6, 5, 3], seed=4, device="cpu").SGD(
        training, 12, 10, 0.5, evaluation_data=evaluation, monitor_evaluation_accuracy=True
    )[1]
    stop = expected_stop(counts, 2)
    assert stop is not None, counts
    ruled = network2.Network([6, 5, 3], seed=4, device="cpu").SGD(
        training, 12, 10, 0.5, evaluation_data=evaluation, monitor_evaluation_accuracy=True, early_stopping_n=2
    )[1]
    assert ruled == counts[: stop + 1]
    assert "Early-stopping: No accuracy change in last epochs: 2" in capsys.readouterr().out


def test_a_resumed_run_goes_on_monitoring_and_a_sweeps_best_cross_entropy_network_resumes(tmp_path):
    folder = tmp_path / "data"
    write_mnist_like(folder, 40, 20, rows=4, cols=4, n_classes=3)
    flags = ("--sizes", "16,4,3", "--seed", "1", "--cost", "cross-entropy", "--monitor", "training-accuracy")
    first = train_on(folder, *flags, "--checkpoint", tmp_path / "c.npz", "--log", tmp_path / "r.jsonl")
    assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", tmp_path / "c.npz", "--epochs", 2, "--data-dir", folder)
    assert resumed.returncode == 0 and "training accuracy" in resumed.stdout, resumed.stderr
    lines = [json.loads(l) for l in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines if "training_accuracy" in l] == [0, 1]
    grid = ("--cost", "cross-entropy", "--lmbda", "3", "--init", "default", "--eval", "test", "--validation-size", 0)
    swept = cli("sweep", "--seeds", "1,2", "--sizes", "16,4,3", "--epochs", 2, "--device", "cpu", "--data-dir", folder,
                *grid, "--save-best", tmp_path / "best.npz")  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    best = Network.load(tmp_path / "best.npz", device="cpu")
    assert (best.cost.name, best.lmbda, best.init) == ("cross-entropy", 3.0, "default")
    again = cli("train", "--resume", tmp_path / "best.npz", "--epochs", 4, "--data-dir", folder, "--device", "cpu")
    assert again.returncode == 0 and "| cost cross-entropy | lmbda 3 | init default |" in again.stdout, again.stderr
