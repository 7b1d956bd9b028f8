"""SIGTERM (docker stop, schedulers) is Ctrl-C, and every other stop signal ends train, sweep and data download
as SIGTERM does: the write finished, the last complete epoch kept, the resume line, exit 128 + the signal, no lock
and no .part left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import MNIST, ROOT, assert_one_line_error, cli, stop_with, training_process, write_mnist_like

from gpunet import Network
from gpunet.io.fs import atomic_write
from gpunet.io.signals import STOP_SIGNALS, Terminated, exit_status, sigterm_as_interrupt, uninterrupted


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_during_a_write_lets_the_write_finish_then_stops(tmp_path, signum, raised):
    def write(f):
        os.kill(os.getpid(), signum)
        f.write(b"the whole epoch")

    with pytest.raises(raised), sigterm_as_interrupt():  # atomic_write holds the signal itself
        with atomic_write(tmp_path / "ck.npz") as f:
            write(f)
    assert (tmp_path / "ck.npz").read_bytes() == b"the whole epoch"
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "ck.npz").write_bytes(b"the last epoch")
    with pytest.raises(ValueError, match="the epoch failed"), atomic_write(tmp_path / "ck.npz") as f:
        f.write(b"half")
        raise ValueError("the epoch failed")
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]
    assert (tmp_path / "ck.npz").read_bytes() == b"the last epoch"


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path):
    (tmp_path / "victim").write_bytes(b"someone else's")
    (tmp_path / "ck.npz").symlink_to(tmp_path / "victim")
    with atomic_write(tmp_path / "ck.npz") as f:
        f.write(b"the epoch")
    assert (tmp_path / "victim").read_bytes() == b"someone else's"
    assert not (tmp_path / "ck.npz").is_symlink() and (tmp_path / "ck.npz").read_bytes() == b"the epoch"


def test_sigterm_handling_is_undone_after_the_command():
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_keeps_the_last_epoch_prints_the_resume_line_and_a_second_training_is_refused(tmp_path):
    checkpoint = tmp_path / "ck.npz"
    args = ["train", "--device", "cpu", "--epochs", "1000", "--seed", "0", "--eval", "none", "--data-dir", str(MNIST)]
    args += ["--checkpoint", str(checkpoint), "--log", str(tmp_path / "run.jsonl")]
    proc = training_process(args, checkpoint)
    try:
        second = cli("train", "--device", "cpu", "--data-dir", MNIST, "--checkpoint", checkpoint, "--force")
        assert_one_line_error(second, "--checkpoint", "another gpunet training is writing it")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and f"gpunet train --resume {checkpoint} --data-dir {MNIST}" in err
    net = Network.load(checkpoint, device="cpu")
    assert net.epoch >= 1 and f"Epoch {net.epoch - 1} complete" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "run.jsonl"]  # no .part, no lock


def test_sigterm_before_the_first_epoch_ends_says_the_checkpoint_holds_nothing_yet(tmp_path):
    """Stopped before epoch 0 ends (a new container compiling numba's kernel), --checkpoint was given: the last line
    says nothing is in it yet, not to pass the flag."""
    checkpoint = tmp_path / "ck.npz"
    args = ["train", "--device", "cpu", "--kernel", "portable", "--sizes", "784,2000,10", "--seed", "0",
            "--eval", "none", "--data-dir", str(MNIST), "--checkpoint", str(checkpoint)]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "gpunet", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        while not proc.stdout.readline().startswith("epochs "):  # the header's last line: epoch 0 begins
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(2)  # into the epoch, which takes much longer on this network
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "Epoch 0" not in out, err
    assert err.splitlines()[-1] == (
        f"gpunet: interrupted before the first epoch ended; nothing was saved yet ({checkpoint} is written after each)"
    )
    assert not checkpoint.exists()


def test_a_signal_in_a_nested_write_waits_for_the_outer_block():
    done = []
    with pytest.raises(Terminated), sigterm_as_interrupt():
        with uninterrupted():
            with uninterrupted():  # the log's write inside an epoch's log-and-checkpoint
                os.kill(os.getpid(), signal.SIGTERM)
            done.append("checkpoint written")  # the checkpoint still gets written
    assert done == ["checkpoint written"]


# ---- every stop signal, in train and sweep ------------------------------------------------------------------


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_each_stop_signal_is_held_during_a_write_and_gives_its_own_status(signum):
    done = []
    with pytest.raises(Terminated) as stop, sigterm_as_interrupt():
        with uninterrupted():
            os.kill(os.getpid(), signum)
            done.append("written")
    assert done == ["written"] and exit_status(stop.value) == 128 + signum


def test_a_signal_the_process_was_started_ignoring_stays_ignored():  # nohup gpunet train ...
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sigterm_as_interrupt(), uninterrupted():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.fixture
def tiny(tmp_path):
    write_mnist_like(tmp_path / "data", 300, 50, rows=4, cols=4)
    return tmp_path / "data"


def _debris(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".lock", ".part")))


@pytest.mark.parametrize("signum", [signal.SIGHUP])
def test_train_stopped_by_a_signal_keeps_the_epoch_and_prints_the_resume_line(tmp_path, tiny, signum):
    checkpoint = tmp_path / "ck.npz"
    args = ["train", "--device", "cpu", "--sizes", "16,8,10", "--epochs", "100000", "--seed", "0", "--eval", "none"]
    args += ["--validation-size", "0", "--data-dir", tiny, "--checkpoint", checkpoint, "--log", tmp_path / "run.jsonl"]
    proc = training_process(args, checkpoint)
    time.sleep(0.5)
    err = stop_with(proc, signum)
    assert f"gpunet train --resume {checkpoint} --data-dir {tiny}" in err
    assert Network.load(checkpoint, device="cpu").epoch >= 1
    assert _debris(tmp_path) == []


def _sweep_process(args):
    code = "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_sweep_is_one_writer_per_out_and_a_signal_ends_it_with_its_status(tmp_path, tiny, signum):
    out = tmp_path / "out"
    args = ["sweep", "--seeds", "1-4", "--sizes", "16,8,10", "--chunk", "1", "--device", "cpu", "--data-dir", tiny]
    args += ["--validation-size", "0", "--out", out]
    proc = _sweep_process([*args, "--epochs", "100000"])
    try:
        deadline = time.monotonic() + 60
        while not (out / "sweep.jsonl").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "sweep.jsonl").exists(), proc.stderr.read() if proc.poll() is not None else "no sweep.jsonl"
        second = cli(*args, "--epochs", "1")
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert "another gpunet sweep is writing it now" in lines[0]
        resumed = cli("sweep", "--resume", out)
        assert resumed.returncode == 2 and "another gpunet sweep is writing it now" in resumed.stderr
        err = stop_with(proc, signum)
    finally:
        proc.kill()
    assert f"gpunet sweep --resume {out}" in err
    assert _debris(tmp_path) == []
