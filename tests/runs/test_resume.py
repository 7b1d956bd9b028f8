"""Resuming a run: it goes on writing its checkpoint and its log, with every setting that changes results and
every flag that shapes its output."""

import json
import re

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, write_mnist_like

from gpunet import Network


@pytest.fixture
def data(mnist_like):
    return mnist_like("tiny")


def train(data, *args):
    return cli("train", "--device", "cpu", "--data-dir", data, *args)


FLAGS = ["--device", "cpu", "--sizes", "16,10", "--seed", "1", "--validation-size", "5"]


def first_run(tmp_path, data, epochs=2, *extra):
    outputs = ("--checkpoint", tmp_path / "ck.npz", "--log", tmp_path / "run.jsonl")
    run = cli("train", "--data-dir", data, *FLAGS, "--epochs", epochs, *outputs, *extra)
    assert run.returncode == 0, run.stderr
    return run


def log_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_resumed_run_goes_on_writing_its_checkpoint_and_its_log(tmp_path, data):
    first_run(tmp_path, data)
    run = train(data, "--resume", tmp_path / "ck.npz", "--epochs", "4")
    assert run.returncode == 0, run.stderr
    assert re.findall(r"^Epoch (\d)", run.stdout, re.M) == ["2", "3"]
    assert Network.load(tmp_path / "ck.npz", device="cpu").epoch == 4
    lines = log_lines(tmp_path / "run.jsonl")
    assert lines[0]["type"] == "manifest" and lines[3]["type"] == "resumed" and lines[3]["at_epoch"] == 2
    assert [o["epoch"] for o in lines if o["type"] == "epoch"] == [0, 1, 2, 3]
    assert lines[3]["run"] == lines[0]["run"]


def test_epochs_logged_after_the_checkpoint_are_redone_not_repeated(tmp_path, data):
    first_run(tmp_path, data)
    with open(tmp_path / "run.jsonl", "a") as f:  # killed after logging epoch 2, before its checkpoint
        f.write(json.dumps({"type": "epoch", "epoch": 2, "seconds": 0.1, "eval": "test"}) + "\n")
    assert train(data, "--resume", tmp_path / "ck.npz", "--epochs", "3").returncode == 0
    assert [o["epoch"] for o in log_lines(tmp_path / "run.jsonl") if o["type"] == "epoch"] == [0, 1, 2]


def test_resume_refuses_the_log_of_another_run(tmp_path, data):
    first_run(tmp_path, data)
    other = train(
        data, "--sizes", "16,10", "--epochs", "1", "--validation-size", "5", "--log", tmp_path / "other.jsonl"
    )
    assert other.returncode == 0
    before = (tmp_path / "other.jsonl").read_bytes()
    run = train(data, "--resume", tmp_path / "ck.npz", "--epochs", "3", "--log", tmp_path / "other.jsonl")
    assert_one_line_error(run, "other.jsonl", "another run")
    assert (tmp_path / "other.jsonl").read_bytes() == before


def test_resume_uses_the_stored_validation_size_and_refuses_another(tmp_path, data):
    first_run(tmp_path, data)
    run = train(data, "--resume", tmp_path / "ck.npz", "--epochs", "3")
    assert "55 train / 5 validation" in run.stdout
    changed = train(data, "--resume", tmp_path / "ck.npz", "--epochs", "3", "--validation-size", "10")
    assert_one_line_error(changed, "--validation-size comes from the checkpoint")


@pytest.mark.parametrize(
    "key, value",
    [
        ("validation_size", None),
        ("seed", None),
        ("batch_size", None),
        ("eta", None),
        ("data", None),
        ("eta", "3"),
        ("batch_size", 0),
        ("sizes", [16]),
        ("epochs", -1),
        ("validation_size", True),
    ],
)
def test_a_checkpoint_missing_or_mistyping_a_setting_is_refused(tmp_path, data, key, value):
    first_run(tmp_path, data)
    net = Network.load(tmp_path / "ck.npz", device="cpu")
    if value is None:
        del net.record["settings"][key]
    else:
        net.record["settings"][key] = value
    net.save(tmp_path / "ck.npz", **net.record)
    run = train(data, "--resume", tmp_path / "ck.npz", "--epochs", "3")
    assert_one_line_error(run, "ck.npz", "cannot resume")


def test_resume_on_other_data_is_refused(tmp_path, data):
    first_run(tmp_path, data)
    write_mnist_like(tmp_path / "other", 60, 20, rows=4, cols=4, seed=5)
    run = cli(
        "train", "--device", "cpu", "--data-dir", tmp_path / "other", "--resume", tmp_path / "ck.npz", "--epochs", "3"
    )
    assert_one_line_error(run, "other data")


def test_a_finished_run_says_there_is_nothing_to_do(tmp_path, data):
    first_run(tmp_path, data)
    before = (tmp_path / "ck.npz").read_bytes()
    run = train(data, "--resume", tmp_path / "ck.npz")
    assert run.returncode == 0 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing to do" in lines[0] and "--epochs" in lines[0]
    assert (tmp_path / "ck.npz").read_bytes() == before


def test_a_resumed_run_reproduces_the_uninterrupted_one(tmp_path, data):
    whole = cli("train", "--data-dir", data, *FLAGS, "--epochs", "4", "--save", tmp_path / "whole.npz")
    assert whole.returncode == 0
    first_run(tmp_path, data)
    assert train(data, "--resume", tmp_path / "ck.npz", "--epochs", "4").returncode == 0
    a, b = (Network.load(tmp_path / f, device="cpu") for f in ("whole.npz", "ck.npz"))
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(x, y)


# ---- it keeps every flag that shapes the run's output, as it keeps the settings: --monitor-cost, --eval, --save


def epoch_lines(log):
    return [o for o in map(json.loads, log.read_text().splitlines()) if o["type"] == "epoch"]


def test_the_readme_sequence_keeps_the_training_cost_and_the_eval_and_the_save(tmp_path, data):
    ck, log, final = tmp_path / "run.npz", tmp_path / "run.jsonl", tmp_path / "final.npz"
    outputs = ["--eval", "validation", "--checkpoint", ck, "--log", log, "--monitor-cost", "--save", final]
    first = cli("train", "--data-dir", data, *FLAGS, "--epochs", "2", *outputs)
    assert first.returncode == 0, first.stderr
    final.unlink()  # as if interrupted before the end
    resumed = cli("train", "--data-dir", data, "--resume", ck, "--epochs", "4")
    assert resumed.returncode == 0, resumed.stderr
    assert "eval validation" in resumed.stdout and "/ 5" in resumed.stdout
    lines = epoch_lines(log)
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


def test_resume_writes_no_path_the_checkpoint_names_outside_its_folder(tmp_path, data):
    first_run(tmp_path, data, 2, "--save", tmp_path / "final.npz")
    received, victim = tmp_path / "received", tmp_path / "victim"
    received.mkdir(), victim.mkdir()
    net = Network.load(tmp_path / "ck.npz", device="cpu")
    record = {**net.record, "log": str(victim / "run.jsonl"), "save": str(victim / "final.npz")}  # its author's
    net.save(received / "ck.npz", **record)
    run = train(data, "--resume", received / "ck.npz", "--epochs", "3")
    assert run.returncode == 0, run.stderr
    assert list(victim.iterdir()) == []
    assert "not beside the checkpoint; not logging (--log PATH again)" in run.stderr
    assert Network.load(received / "ck.npz", device="cpu").epoch == 3  # the checkpoint itself goes on
