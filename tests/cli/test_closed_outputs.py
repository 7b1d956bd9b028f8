"""Closed or failing standard streams (``>&-``, ``>/dev/full``, all three closed): the work still finishes and
saves what was asked, no traceback, and the exit status says what happened."""

import os
import subprocess
import sys

import pytest
from helpers import ROOT, write_mnist_like

FULL = "/dev/full"
CODE = "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
needs_full = pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full here")


def gpunet(args, redirections):
    """``gpunet ARGS REDIRECTIONS`` run by the shell, as a user types it; stderr captured unless redirected."""
    command = " ".join([f"'{sys.executable}'", "-c", f"'{CODE}'", *(f"'{a}'" for a in args), redirections])
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture
def train(tmp_path):
    write_mnist_like(tmp_path / "data", 100, 20, rows=4, cols=4)
    save = tmp_path / "net.npz"
    args = ["train", "--device", "cpu", "--sizes", "16,8,10", "--epochs", "2", "--seed", "1",
            "--validation-size", "0", "--data-dir", tmp_path / "data", "--save", save]  # fmt: skip
    return [str(a) for a in args], save


@pytest.mark.parametrize("redirections", [">&-", "<&- >&- 2>&-"])
def test_a_closed_stdout_is_like_dev_null(train, redirections):
    args, save = train
    run = gpunet(args, redirections)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and save.is_file()


@needs_full
def test_a_full_stdout_still_saves_then_says_the_lines_were_lost(train):
    args, save = train
    run = gpunet(args, f">{FULL}")
    assert run.returncode == 2 and save.is_file(), run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr  # what was saved is said in the closing line, on the stdout that failed
    assert lines[-1].startswith("gpunet: error: standard output failed (No space left on device)")


@needs_full
@pytest.mark.parametrize("redirections", [f"2>{FULL}", f">{FULL} 2>{FULL}", "<&- >&- 2>&-"])
def test_a_user_error_is_still_exit_2_when_stderr_fails(tmp_path, redirections):
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    run = gpunet(["evaluate", str(tmp_path / "bad.npz")], redirections)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("redirections, status", [(">&-", 0)])
def test_bench_json_on_a_closed_stdout(train, redirections, status):
    data = train[0][train[0].index("--data-dir") + 1]
    args = ["bench", "--sizes", "16,8,10", "--batch-size", "10", "--epochs", "1", "--book-examples", "0",
            "--validation-size", "0", "--data-dir", data, "--json"]  # fmt: skip
    run = gpunet(args, redirections)
    assert run.returncode == status and "Traceback" not in run.stderr, run.stderr
