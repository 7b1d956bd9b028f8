"""Issue 20.10 and 20.14: one rule for --epochs; contradictory or ignored flags are refused in one line, and
the header shows the mini-batch really used."""

import pytest
from helpers import assert_one_line_error, cli, train_on, write_mnist_like


@pytest.mark.parametrize("command", (["train"], ["sweep", "--seeds", "1"], ["bench"]))
def test_epochs_zero_is_refused_the_same_way_by_every_command(command):
    run = cli(*command, "--device", "cpu", "--epochs", "0")
    assert_one_line_error(run, "argument --epochs: expected a whole number >= 1 and <= 1,000,000, got '0'")


@pytest.mark.parametrize("command", (["train"], ["sweep", "--seeds", "1"], ["evaluate", "m.npz"], ["data", "info"]))
def test_the_book_pickle_has_its_own_validation_split(command, tmp_path):
    run = cli(*command, "--data", tmp_path / "mnist.pkl.gz", "--validation-size", "5000")
    assert_one_line_error(run, "--validation-size does not apply to --data")


@pytest.mark.parametrize("command", (["train"], ["bench"], ["evaluate", "m.npz"], ["data", "info"]))
def test_data_and_data_dir_are_one_or_the_other(command, tmp_path):
    run = cli(*command, "--data", tmp_path / "mnist.pkl.gz", "--data-dir", tmp_path)
    assert_one_line_error(run, "--data-dir: not allowed with argument --data")


def test_plot_draws_curves_or_digits_not_both(tmp_path):
    run = cli("plot", tmp_path / "run.jsonl", "--misclassified", tmp_path / "m.npz", "-o", tmp_path / "p.png")
    assert_one_line_error(run, "not both", "--misclassified")


def test_plot_count_without_misclassified_is_refused(tmp_path):
    run = cli("plot", tmp_path / "run.jsonl", "--count", "5", "-o", tmp_path / "p.png")
    assert_one_line_error(run, "--count is for --misclassified")


def test_the_header_shows_the_mini_batch_really_used(tmp_path):
    write_mnist_like(tmp_path, 40, 10, rows=4, cols=4)
    run = train_on(tmp_path, "--sizes", "16,10", "--batch-size", "100000", "--eval", "none", validation_size=10)
    assert run.returncode == 0, run.stderr
    assert "mini-batch 30 (all the training images; --batch-size 100000 is more)" in run.stdout
    plain = train_on(tmp_path, "--sizes", "16,10", "--batch-size", "7", "--eval", "none", validation_size=10)
    assert "mini-batch 7 |" in plain.stdout
