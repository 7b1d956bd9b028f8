"""Issue 22.15: a model's epoch counter bounded to what a run can reach; a model whose output layer does not
match the data's classes is said in one line, not scored as if it did."""

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet.network import Network

MAX_EPOCHS = 1_000_000  # gpunet.settings.MAX_EPOCHS, as docs/reliability.md states it


@pytest.fixture
def data(tmp_path):
    write_mnist_like(tmp_path / "data", 40, 20)
    return tmp_path / "data"


@pytest.mark.parametrize("epoch", [10**30, MAX_EPOCHS + 1])
@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_an_epoch_counter_no_run_reaches_is_refused(tmp_path, data, epoch, command):
    net = Network([784, 5, 10], seed=0, device="cpu")
    net.epoch = epoch
    net.save(tmp_path / "m.npz")
    args = ("evaluate", tmp_path / "m.npz") if command == "evaluate" else ("train", "--resume", tmp_path / "m.npz")
    run = cli(*args, "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert_one_line_error(run, "epoch counter", f"{MAX_EPOCHS:,}")


def test_a_counter_at_the_limit_loads(tmp_path):
    net = Network([784, 5, 10], seed=0, device="cpu")
    net.epoch = MAX_EPOCHS
    net.save(tmp_path / "m.npz")
    assert Network.load(tmp_path / "m.npz", device="cpu").epoch == MAX_EPOCHS


@pytest.mark.parametrize("command", [("train",), ("sweep", "--seeds", "1")])
def test_more_epochs_than_a_run_reaches_are_refused_in_one_line(data, command):
    run = cli(*command, "--epochs", 10**12, "--device", "cpu", "--data-dir", data)
    assert_one_line_error(run, "--epochs", f"{MAX_EPOCHS:,}")


@pytest.mark.parametrize("sizes", [[784, 30], [784, 12]])
def test_a_model_whose_outputs_are_not_the_classes_is_said_in_one_line(tmp_path, data, sizes):
    Network(sizes, seed=0, device="cpu").save(tmp_path / "m.npz")
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert_one_line_error(run, f"output layer has {sizes[-1]} neurons", "10 classes", "no record says")
    assert run.stdout == ""


def test_a_model_trained_with_more_outputs_is_scored_with_a_note(tmp_path, data):
    """Training --sizes 784,5,12 on 10 classes is allowed (docs/reliability.md): its score comes with one line."""
    train = cli("train", "--sizes", "784,5,12", "--epochs", "1", "--device", "cpu", "--data-dir", data,
                "--validation-size", "0", "--save", tmp_path / "m.npz")  # fmt: skip
    assert train.returncode == 0, train.stderr
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert run.returncode == 0 and "/ 20 correct" in run.stdout, run.stderr
    (note,) = run.stderr.splitlines()
    assert "output layer has 12 neurons, but the data has 10 classes: it was trained so" in note


def test_a_model_of_the_classes_is_scored(tmp_path, data):
    Network([784, 5, 10], seed=0, device="cpu").save(tmp_path / "m.npz")
    run = cli("evaluate", tmp_path / "m.npz", "--device", "cpu", "--data-dir", data, "--validation-size", "0")
    assert run.returncode == 0 and "/ 20 correct" in run.stdout, run.stderr
