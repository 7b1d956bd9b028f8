"""The file-system rules (io/fs.py): regular files only, writable targets, one writer per file, temporaries that
are never taken for results."""

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import MNIST, assert_one_line_error, cli, small_mnist, train_on, train_small

from gpunet.io.download import MNIST as FILES


# Damaged input: a FIFO where a regular file belongs is refused (``data verify`` reads through open_regular, as
# training does), never blocked on
def test_a_fifo_among_the_files_is_one_line_not_a_hang(tmp_path):
    first, *rest = FILES
    for name in rest:
        (tmp_path / name).write_bytes((MNIST / name).read_bytes())
    os.mkfifo(tmp_path / first)
    _unblock_later(tmp_path / first)  # should verify block on it, it ends with an empty read, and this fails
    assert_one_line_error(cli("data", "verify", "--data-dir", tmp_path), first, "not a regular file")


def _unblock_later(fifo: Path, seconds: float = 3.0) -> threading.Thread:
    """Should a reader block on the FIFO (today's main), open its other end after a while so the test ends."""

    def writer():
        deadline = time.monotonic() + seconds + 5
        time.sleep(seconds)
        while time.monotonic() < deadline:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:  # no reader: nothing is blocked
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"])
def test_a_fifo_as_a_data_file_is_refused_at_once(tmp_path, name):
    folder = small_mnist(tmp_path)
    for stale in folder.glob(name.removesuffix(".gz") + "*"):
        stale.unlink()
    os.mkfifo(folder / name)
    _unblock_later(folder / name)
    assert_one_line_error(train_on(folder, "--seed", "0"), name, "not a regular file")


def test_a_fifo_as_the_books_pickle_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "mnist.pkl.gz")
    _unblock_later(tmp_path / "mnist.pkl.gz")
    assert_one_line_error(cli("data", "info", "--data", tmp_path / "mnist.pkl.gz"), "not a regular file")


# The files a run writes: writable, locked, temporaries never taken for results
@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--log"])
def test_an_unwritable_target_is_caught_before_training(tmp_path, small_data, flag):
    (tmp_path / "folder").mkdir()
    targets = [
        (tmp_path / "folder", "a folder"),
        ("/dev/null", "not a regular file"),
        ("/proc/gpunet-test.npz", "not writable"),
        (tmp_path / "no" / "m", "does not exist"),
    ]
    for target, what in targets:
        run = train_small(small_data, flag, target)
        assert_one_line_error(run, flag, what)
        assert run.stdout == ""  # nothing trained, nothing lost


def test_stale_temporaries_of_a_target_are_removed_and_others_kept(tmp_path, small_data):
    stale = [tmp_path / ".ck.npz.a1b2c3d4.part", tmp_path / ".run.jsonl.zz_99xyz.part"]
    kept = [tmp_path / ".ck.npz.old.a1b2c3d4.part", tmp_path / ".other.npz.a1b2c3d4.part", tmp_path / "ck.npz.part"]
    for p in stale + kept:
        p.write_bytes(b"half a file")
    assert train_small(small_data, "--checkpoint", tmp_path / "ck.npz", "--log", tmp_path / "run.jsonl").returncode == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert not list(tmp_path.glob(".*.lock"))  # the locks are gone with the run


def test_a_second_training_on_the_same_checkpoint_is_refused(tmp_path, small_data):
    from filelock import FileLock

    with FileLock(tmp_path / ".ck.npz.lock"):  # as a training in another process holds it
        run = train_small(small_data, "--checkpoint", tmp_path / "ck.npz")
        assert_one_line_error(run, "--checkpoint", "another gpunet training is writing it")
    assert not (tmp_path / "ck.npz").exists()
    assert train_small(small_data, "--checkpoint", tmp_path / "ck.npz").returncode == 0


def test_a_temporary_is_never_read_as_a_result(tmp_path, small_data, small_model):
    (tmp_path / ".model.npz.abcd1234.part").write_bytes(small_model.read_bytes())
    (tmp_path / ".run.jsonl.abcd1234.part").write_bytes((tmp_path / "run.jsonl").read_bytes())
    for run in (
        cli("evaluate", tmp_path / ".model.npz.abcd1234.part", "--device", "cpu", "--data-dir", small_data),
        cli("train", "--device", "cpu", "--data-dir", small_data, "--resume", tmp_path / ".model.npz.abcd1234.part"),
        cli("plot", tmp_path / ".run.jsonl.abcd1234.part", "-o", tmp_path / "c.png"),
    ):
        assert_one_line_error(run, "a temporary left by an interrupted write")


def test_a_fifo_as_a_picture_is_refused_at_once(tmp_path, small_model):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)

    def unblock():  # should a reader block (today's main), open the other end so the test still ends
        time.sleep(3)
        for _ in range(50):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:
                time.sleep(0.1)

    threading.Thread(target=unblock, daemon=True).start()
    assert_one_line_error(cli("predict", small_model, fifo), "digit.png", "not a regular file")
