"""The flags people type (issue 30, item 9): other libraries' names get a hint to gpunet's, no wrong hints,
``--quiet`` quiets training, and ``train --save-best`` keeps the epoch the summary calls best."""

import re

import pytest
from helpers import assert_one_line_error, cli

from gpunet.network import Network

SMALL = ["--device", "cpu", "--sizes", "64,8,4", "--validation-size", "20", "--kernel", "portable"]


@pytest.mark.parametrize(
    "flags, meant",
    [
        (["--lr", "0.5"], "--eta"),
        (["--learning-rate", "0.5"], "--eta"),
        (["--lr=0.5"], "--eta"),
        (["--save-model", "m.npz"], "--save"),
        (["--epoch", "3"], "--epochs"),  # a typo still gets its hint
    ],
)
def test_other_libraries_names_point_to_gpunets(flags, meant):
    assert_one_line_error(cli("train", *flags), "unrecognized arguments", f"(did you mean {meant}?)")


def test_a_longer_flag_is_not_taken_for_the_one_it_ends_with():
    run = cli("train", "--test-batch-size", "100")
    assert_one_line_error(run, "unrecognized arguments: --test-batch-size 100")
    assert "did you mean" not in run.stderr


@pytest.mark.parametrize("typed, meant", [("gpu", "cuda"), ("GPU:1", "cuda:1")])
def test_device_gpu_asks_for_cuda(typed, meant):
    assert_one_line_error(cli("train", "--device", typed), f"got {typed!r} (did you mean {meant}?)")


def test_quiet_training_prints_the_header_and_the_summary_only(data_dir):
    run = cli("train", "--data-dir", data_dir, *SMALL, "--epochs", 2, "--quiet")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert not any(line.startswith("Epoch") for line in lines) and lines[-1].startswith("done: best epoch")
    assert len(lines) == 4, lines


def test_save_best_keeps_the_epoch_the_summary_calls_best(data_dir, tmp_path):
    best, last = tmp_path / "best.npz", tmp_path / "last.npz"
    run = cli("train", "--data-dir", data_dir, *SMALL, "--epochs", 6, "--eta", 8, "--seed", 2,
              "--save-best", best, "--save", last)  # fmt: skip
    assert run.returncode == 0, run.stderr
    counts = [int(c) for c in re.findall(r"^Epoch \d: (\d+) /", run.stdout, re.M)]
    top = counts.index(max(counts))
    assert top < 5 and counts[top] > counts[-1]  # this seed's best is not its last
    summary = run.stdout.splitlines()[-1]
    assert f"best epoch {top}:" in summary and f"final model {last}, best model (epoch {top}) {best}" in summary
    kept = Network.load(best, device="cpu")
    assert kept.epoch == top + 1 and Network.load(last, device="cpu").epoch == 6
    correct = kept.evaluate(_test_split(data_dir))
    assert correct == max(counts)  # scored again from the file: the best epoch's network, not the last


def _test_split(data_dir):
    from gpunet.data import load

    host = load(str(data_dir), None, 20, False, None)
    return host.test[0] / 255.0, host.test[1]


def test_save_best_needs_scored_epochs(data_dir, tmp_path):
    run = cli("train", "--data-dir", data_dir, *SMALL, "--eval", "none", "--save-best", tmp_path / "b.npz")
    assert_one_line_error(run, "--save-best needs epochs scored")


def test_save_best_goes_on_across_a_resume_with_the_runs_best(data_dir, tmp_path):
    """Epochs 0-5 of this seed score 9, 17, 17, 7, 13, 9: stopped after epoch 1 and resumed to 6, the best stays
    epoch 1 (epoch 2 only equals it), in the file and in the summary's words."""
    checkpoint, best = tmp_path / "c.npz", tmp_path / "b.npz"
    flags = [*SMALL, "--eta", 8, "--seed", 2, "--checkpoint", checkpoint, "--save-best", best]
    first = cli("train", "--data-dir", data_dir, *flags, "--epochs", 2)
    assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", checkpoint, "--data-dir", data_dir, "--epochs", 6, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    counts = [int(c) for c in re.findall(r"^Epoch \d: (\d+) /", first.stdout + resumed.stdout, re.M)]
    assert counts == [9, 17, 17, 7, 13, 9]
    summary = resumed.stdout.splitlines()[-1]
    assert summary.startswith("done: best epoch 1: 17 / 40") and f"best model (epoch 1) {best}" in summary
    assert Network.load(best, device="cpu").epoch == 2
