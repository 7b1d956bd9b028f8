"""``train --resume`` keeps every flag that shapes the run's output, as it keeps the settings (issue 20, item 3):
--monitor-cost, --eval and --save."""

import json

import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet import Network

FLAGS = ["--device", "cpu", "--sizes", "16,10", "--seed", "1", "--validation-size", "5"]


@pytest.fixture
def data(tmp_path):
    write_mnist_like(tmp_path / "d", 60, 20, rows=4, cols=4)
    return tmp_path / "d"


def epochs(log):
    return [o for o in map(json.loads, log.read_text().splitlines()) if o["type"] == "epoch"]


def test_the_readme_sequence_keeps_the_training_cost_and_the_eval_and_the_save(tmp_path, data):
    ck, log, final = tmp_path / "run.npz", tmp_path / "run.jsonl", tmp_path / "final.npz"
    first = cli(
        "train",
        "--data-dir",
        data,
        *FLAGS,
        "--epochs",
        "2",
        "--eval",
        "validation",
        "--checkpoint",
        ck,
        "--log",
        log,
        "--monitor-cost",
        "--save",
        final,
    )
    assert first.returncode == 0, first.stderr
    final.unlink()  # as if interrupted before the end
    resumed = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "4")
    assert resumed.returncode == 0, resumed.stderr
    assert "eval validation" in resumed.stdout and "/ 5" in resumed.stdout
    lines = epochs(log)
    assert [e["epoch"] for e in lines] == [0, 1, 2, 3]
    assert all("training_cost" in e and e["eval"] == "validation" and e["total"] == 5 for e in lines)
    assert Network.load(final, device="cpu").epoch == 4  # the --save of the run, written at its end


def test_a_flag_that_shapes_the_output_given_otherwise_on_resume_is_refused(tmp_path, data):
    ck = tmp_path / "run.npz"
    assert cli("train", "--data-dir", data, *FLAGS, "--epochs", "1", "--checkpoint", ck).returncode == 0
    refused = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "2", "--eval", "validation")
    assert_one_line_error(refused, "--eval comes from the checkpoint")
    refused = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "2", "--monitor-cost")
    assert_one_line_error(refused, "--monitor-cost comes from the checkpoint")
    same = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "2", "--eval", "test")
    assert same.returncode == 0, same.stderr
