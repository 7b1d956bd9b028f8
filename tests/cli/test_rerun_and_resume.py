"""Stopped and started again (issue 30, items 5 and 6): the same command after a Ctrl-C before the first epoch
runs, and a resumed run keeps the kernel it was started with."""

import json

import pytest
from helpers import cli, write_mnist_like

from gpunet.io.jsonl import read_log

SMALL = ["--device", "cpu", "--sizes", "64,8,4", "--validation-size", "20"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 120, 40, rows=8, cols=8, n_classes=4)
    return folder


def test_the_same_command_runs_again_after_a_stop_before_the_first_epoch(data_dir, tmp_path):
    """A run stopped before epoch 0 ended leaves its log's manifest alone (JsonLog writes it before training):
    that log holds no results, so the same command line (a new run id, no --seed) replaces it."""
    log = tmp_path / "run.jsonl"
    log.write_text(json.dumps({"type": "manifest", "run": "an-interrupted-run", "settings": {}}) + "\n")
    flags = ["train", "--data-dir", data_dir, *SMALL, "--epochs", 1, "--log", log, "--checkpoint", tmp_path / "c.npz"]
    again = cli(*flags)
    assert again.returncode == 0, again.stderr
    manifest, epochs = read_log(log)
    assert manifest["run"] != "an-interrupted-run" and [e["epoch"] for e in epochs] == [0]
    other = cli(*flags[:-2])  # a log with an epoch in it is another run's results: still refused
    assert other.returncode == 2 and "holds another run's log" in other.stderr
