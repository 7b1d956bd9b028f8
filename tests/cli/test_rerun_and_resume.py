"""Stopped and started again (issue 30, items 5 and 6): the same command after a Ctrl-C before the first epoch
runs, and a resumed run keeps the kernel it was started with."""

import json

from helpers import cli

from gpunet.io.jsonl import read_log

SMALL = ["--device", "cpu", "--sizes", "64,8,4", "--validation-size", "20"]


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


def _weights(path):
    from gpunet.network import Network

    net = Network.load(path, device="cpu")
    return [net.backend.to_host(w) for w in net.weights]


def test_a_resumed_portable_run_stays_portable_bit_for_bit(data_dir, tmp_path):
    import numpy as np

    whole, half = tmp_path / "whole.npz", tmp_path / "half.npz"
    portable = [*SMALL, "--kernel", "portable", "--seed", 4]
    assert cli("train", "--data-dir", data_dir, *portable, "--epochs", 2, "--checkpoint", whole).returncode == 0
    assert cli("train", "--data-dir", data_dir, *portable, "--epochs", 1, "--checkpoint", half).returncode == 0
    resumed = cli("train", "--resume", half, "--data-dir", data_dir, "--epochs", 2, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "kernel portable (the run's own, kept on resume)" in resumed.stdout
    assert all(np.array_equal(a, b) for a, b in zip(_weights(whole), _weights(half), strict=True))


def test_a_resumed_run_on_another_kernel_says_so(data_dir, tmp_path):
    checkpoint = tmp_path / "run.npz"
    flags = [*SMALL, "--kernel", "portable", "--seed", 4, "--epochs", 1, "--checkpoint", checkpoint]
    assert cli("train", "--data-dir", data_dir, *flags).returncode == 0
    other = cli("train", "--resume", checkpoint, "--data-dir", data_dir, "--epochs", 2, "--device", "cpu",
                "--kernel", "numba-loop")  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert "trained in kernel portable, resumed in numba-loop: its epochs from here may differ" in other.stderr
