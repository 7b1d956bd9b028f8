"""What a run tells its user, as PyTorch's and Keras's examples do (issue 20, items 16-21): the accuracy and the
evaluation time on every epoch line, a closing summary, the data named in the header, plans that change said
so, and counts that mean what they say."""

import os
import re
import subprocess
import sys

import fake_cupy
import pytest
from helpers import ROOT, assert_one_line_error, cli

SMALL = ["--device", "cpu", "--sizes", "64,8,4", "--validation-size", "20", "--kernel", "portable"]


def train(data_dir, *flags):
    run = cli("train", "--data-dir", data_dir, *SMALL, *flags)
    assert run.returncode == 0, run.stderr
    return run


def test_epoch_lines_give_the_accuracy_and_both_times(data_dir):
    run = train(data_dir, "--epochs", 2, "--seed", 3)
    lines = re.findall(r"^Epoch (\d): (\d+) / 40 \((\d+\.\d\d)%\) \| train \d+\.\d\d s, eval \d+\.\d\d s$", run.stdout,
                       re.M)  # fmt: skip
    assert [epoch for epoch, _, _ in lines] == ["0", "1"]
    assert all(f"{int(correct) / 40:.2%}" == f"{pct}%" for _, correct, pct in lines)


def test_the_run_ends_with_a_summary_of_the_best_epoch_the_time_and_the_files(data_dir, tmp_path):
    files = {"--save": tmp_path / "m.npz", "--checkpoint": tmp_path / "c.npz", "--log": tmp_path / "r.jsonl"}
    run = train(data_dir, "--epochs", 3, "--seed", 3, *[str(a) for pair in files.items() for a in pair])
    counts = [int(c) for c in re.findall(r"^Epoch \d: (\d+) /", run.stdout, re.M)]
    best = counts.index(max(counts))
    last = run.stdout.splitlines()[-1]
    assert last.startswith(f"done: best epoch {best}: {max(counts)} / 40 ") and f"final {counts[-1]} / 40" in last
    assert re.search(r"3 epochs in \d+\.\d s \(\d+\.\d s training, \d+\.\d s eval\)", last)
    assert f"model {files['--save']}, checkpoint {files['--checkpoint']}, log {files['--log']}" in last
    quiet = train(data_dir, "--epochs", 1, "--eval", "none")
    assert quiet.stdout.splitlines()[-1].endswith("| nothing saved (--save PATH)")


def test_the_header_names_the_data_and_says_in_memory_not_pinned(data_dir):
    header = train(data_dir, "--epochs", 1).stdout.splitlines()[1]
    assert f"data {data_dir}: 100 train / 20 validation / 40 test" in header
    assert "in memory on cpu" in header and "pinned" not in header


def test_a_model_file_of_an_earlier_run_is_refused_naming_that_run(data_dir, tmp_path):
    train(data_dir, "--epochs", 1, "--seed", 5, "--save", tmp_path / "m.npz")
    again = cli("train", "--data-dir", data_dir, *SMALL, "--epochs", 1, "--seed", 5, "--save", tmp_path / "m.npz")
    assert_one_line_error(again, "holds another run's model (sizes [64, 8, 4], seed 5, epochs 1)", "--force")
    assert train(data_dir, "--epochs", 1, "--seed", 5, "--save", tmp_path / "m.npz", "--force").returncode == 0


def test_resume_says_when_epochs_moves_the_runs_end(data_dir, tmp_path):
    checkpoint = tmp_path / "run.npz"
    train(data_dir, "--epochs", 2, "--seed", 1, "--checkpoint", checkpoint)
    moved = cli("train", "--resume", checkpoint, "--data-dir", data_dir, "--epochs", 3, "--device", "cpu")
    assert "--epochs 3 moves the run's end from epoch 2 (kept on resume)" in moved.stdout.splitlines()[2]
    same = cli("train", "--resume", checkpoint, "--data-dir", data_dir, "--epochs", 4, "--device", "cpu")
    assert "moves the run's end from epoch 3" in same.stdout
    plain = cli("train", "--resume", checkpoint, "--data-dir", data_dir, "--device", "cpu")
    assert "nothing to do" in plain.stderr and "moves" not in plain.stdout


def test_plot_counts_the_networks_of_a_sweep_and_the_digits_wrong_of_all(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep"
    run = cli("sweep", "--seeds", "1-3", "--eta", "1,3", "--sizes", "64,8,4", "--epochs", 1, "--data-dir", data_dir,
              "--validation-size", 20, "--device", "cpu", "--out", out)  # fmt: skip
    assert run.returncode == 0, run.stderr
    train(data_dir, "--epochs", 1, "--seed", 2, "--log", tmp_path / "one.jsonl", "--save", tmp_path / "m.npz")
    plot = cli("plot", out / "sweep.jsonl", tmp_path / "one.jsonl", "-o", tmp_path / "c.png")
    assert "curves of 1 run and 6 networks of 1 sweep drawn to" in plot.stderr
    wrong = cli("plot", "--misclassified", tmp_path / "m.npz", "--count", 2, "-o", tmp_path / "w.png",
                "--data-dir", data_dir)  # fmt: skip
    assert re.search(r"2 of the (\d+) misclassified test digits \(of 40\) drawn", wrong.stderr), wrong.stderr


def test_a_sweep_on_an_unusable_device_says_so_before_its_header(data_dir, monkeypatch):
    fake_cupy.install(monkeypatch, "missing")
    run = cli("sweep", "--seeds", "1", "--device", "cuda", "--data-dir", data_dir, "--sizes", "64,8,4")
    assert_one_line_error(run, "CUDA")
    assert run.stdout == ""


def test_the_python_example_finds_the_data_from_any_folder(tmp_path):
    """docs/python.md's example, up to loading the data, run from a folder that has no data/ of its own."""
    text = (ROOT / "docs" / "python.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    head = block[: block.index("\n", block.index("data = "))]
    env = {k: v for k, v in os.environ.items() if k != "GPUNET_DATA"} | {"PYTHONPATH": str(ROOT)}
    code = f"{head}\nprint(len(data.test_data[1]))"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.split() == ["10000"], run.stderr[-500:]
