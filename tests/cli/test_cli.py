"""``gpunet`` as a user runs it: its exit status and its output.

The commands run in-process (``helpers.cli`` calls ``gpunet.cli.main``); the last tests start a real
interpreter, for what only a process shows: its exit status, a closed pipe.
"""

import os
import re
import subprocess
import sys
import warnings

import fake_cupy
import pytest
from helpers import MNIST, ROOT, assert_one_line_error, cli, train_on, write_mnist_like

__all__ = ["MNIST", "ROOT", "assert_one_line_error", "gpunet"]  # what other test modules import from here


def gpunet(*args, env=None, cwd=ROOT, prelude=""):
    """``gpunet ARGS`` in a fresh interpreter: for signals, pipes and interpreter start-up only (slow)."""
    code = prelude + "import sys; from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )


@pytest.fixture(autouse=True)
def in_the_checkout(monkeypatch):
    """Run from the checkout, as a user of the README does (and as the subprocesses these tests replace did)."""
    monkeypatch.chdir(ROOT)


def test_version_and_help_show_defaults(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps the help to the terminal's width
    assert cli("--version").stdout.startswith("gpunet ")
    help_text = cli("train", "--help").stdout
    for default in ("default: auto", "default: 784,30,10", "default: 30", "default: 3.0", "default: float32"):
        assert default in help_text


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--sizes", "784"], "--sizes"),
        (["--sizes", "784,a,10"], "--sizes"),
        (["--eta", "-1"], "--eta"),
        (["--eta", "nan"], "--eta"),
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "-2"], "--epochs"),
        (["--device", "gpu"], "--device"),
        (["--dtype", "float16"], "--dtype"),
        (["--sizes", "100,30,10"], "must start with 784"),
        (["--sizes", "784,30,5"], "at least 10 outputs"),
        (["--validation-size", "60000"], "does not fit"),
        (["--eval", "validation", "--validation-size", "0"], "--validation-size > 0"),
    ],
)
def test_invalid_settings_are_one_line_and_exit_2(args, fragment):
    assert_one_line_error(cli("train", "--device", "cpu", "--epochs", "1", *args), fragment)


def test_missing_data_names_the_file(tmp_path):
    (tmp_path / "none").mkdir()  # there, but empty (a folder that is not there: tests/io/test_find.py)
    run = cli("train", "--device", "cpu", "--data-dir", str(tmp_path / "none"), "--no-download")
    assert_one_line_error(run, "train-images-idx3-ubyte.gz", "file not found", "--data-dir", "gpunet data download")


def test_corrupt_data_names_the_file(tmp_path):
    write_mnist_like(tmp_path, 20, 5)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    assert_one_line_error(cli("train", "--device", "cpu", "--data-dir", str(tmp_path)), "t10k-images-idx3-ubyte.gz")


def test_cuda_without_cupy_is_one_line(monkeypatch):
    fake_cupy.install(monkeypatch, "missing")
    run = cli("train", "--device", "cuda")
    assert_one_line_error(run, "CuPy is not installed", "pip install 'gpunet[cuda12]'")


def test_cuda_with_cupy_but_no_driver_is_one_line(monkeypatch):
    fake_cupy.install(monkeypatch, "no-driver")
    assert_one_line_error(cli("train", "--device", "cuda"), "no CUDA driver or GPU")


def test_cuda_on_this_machine_fails_cleanly_or_trains():
    """With whatever CuPy this environment really has (usually none in CI)."""
    run = cli("train", "--device", "cuda", "--epochs", "1")
    if run.returncode != 0:
        assert_one_line_error(run, "--device cpu")


def test_other_idx_datasets_train_end_to_end(tmp_path):
    """8x8 images, 4 classes: the input size and class count come from the files."""
    write_mnist_like(tmp_path, 300, 50, rows=8, cols=8, n_classes=4)
    run = train_on(
        str(tmp_path), "--sizes", "64,16,4", "--eval", "validation", "--seed", "1", epochs=2, validation_size=100
    )
    assert run.returncode == 0, run.stderr
    assert re.findall(r"^Epoch (\d): \d+ / 100 \(", run.stdout, re.M) == ["0", "1"]


def test_auto_without_a_gpu_takes_the_cpu_quietly(tmp_path, monkeypatch):
    fake_cupy.install(monkeypatch, "missing")
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(str(tmp_path), "--sizes", "16,2", device=None)
    assert run.returncode == 0 and "device cpu" in run.stdout
    assert run.stderr == ""  # no GPU here: nothing to explain (issue 13 item 11)


def test_same_seed_same_run(tmp_path):
    write_mnist_like(tmp_path, 200, 50, rows=6, cols=6)
    strip = lambda out: re.sub(r"\d+\.\d+ s\b", "", out)  # noqa: E731 - timings differ
    first, second = (train_on(tmp_path, "--sizes", "36,12,10", "--seed", "5", epochs=3) for _ in range(2))
    assert first.returncode == 0 and strip(first.stdout) == strip(second.stdout)


def test_env_var_points_at_the_data(tmp_path, monkeypatch):
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    run = cli(
        "train",
        "--device",
        "cpu",
        "--sizes",
        "16,2",
        "--epochs",
        "1",
        "--validation-size",
        "0",
    )
    assert run.returncode == 0, run.stderr


def test_one_epoch_on_real_mnist_reaches_90_percent():
    run = cli("train", "--device", "cpu", "--epochs", "1", "--seed", "0", "--data-dir", str(MNIST))
    assert run.returncode == 0, run.stderr
    assert "50000 train / 10000 validation / 10000 test" in run.stdout
    correct = int(re.search(r"^Epoch 0: (\d+) / 10000", run.stdout, re.M).group(1))
    assert correct >= 9000


def test_tiny_learning_rate_learns_little_and_huge_one_warns_nothing():
    slow = cli("train", "--device", "cpu", "--epochs", "5", "--eta", "0.001", "--seed", "0", "--data-dir", str(MNIST))
    last = int(re.findall(r"^Epoch \d: (\d+) / 10000", slow.stdout, re.M)[-1])
    assert slow.returncode == 0 and last < 6000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning at all (overflow in exp, ...) would end the run
        wild = cli("train", "--device", "cpu", "--epochs", "1", "--eta", "100", "--seed", "0", "--data-dir", str(MNIST))
    assert wild.returncode == 0 and wild.stderr == "", wild.stderr


def test_info_reports_backends_and_data(tmp_path, monkeypatch):
    fake_cupy.install(monkeypatch, "missing")
    run = cli("info")
    assert run.returncode == 0, run.stderr
    assert "cpu: " in run.stdout and "cuda: not usable: CuPy is not installed" in run.stdout.replace(
        "CUDA requested but ", ""
    )
    assert "50000 / 10000 / 10000" in run.stdout and "28x28 images, 10 classes" in run.stdout
    missing = cli("info", "--data-dir", str(tmp_path))
    assert missing.returncode == 0 and "data: not usable:" in missing.stdout


def test_a_closed_pipe_ends_quietly():
    code = "import sys; from gpunet.cli import main; sys.exit(main(['info']))"
    run = subprocess.run(f"'{sys.executable}' -c \"{code}\" | head -c 10", shell=True, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)  # fmt: skip
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


def test_a_real_process_exits_with_the_status_main_returns(tmp_path):
    """``python -m gpunet``, as the console script runs it: the exit status is main's, the error one line."""
    command = [sys.executable, "-m", "gpunet"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("gpunet "), version.stderr
    usage = subprocess.run([*command, "train", "--device", "gpu"], capture_output=True, text=True, timeout=60)
    assert_one_line_error(usage, "--device")
    missing = gpunet("train", "--device", "cpu", "--data-dir", str(tmp_path), "--no-download")
    assert_one_line_error(missing, "file not found")


def test_running_out_of_memory_anywhere_is_one_line(tmp_path, monkeypatch):
    import gpunet.cli.train

    write_mnist_like(tmp_path, 20, 10, rows=4, cols=4)

    def pin(*args):  # as numpy says it when ulimit -v leaves too little for the pinned data
        raise MemoryError("Unable to allocate 359. MiB for an array with shape (60000, 784) and data type float64")

    monkeypatch.setattr(gpunet.cli.train, "pin", pin)
    run = cli("train", "--device", "cpu", "--data-dir", tmp_path, "--sizes", "16,10", "--epochs", "1",
              "--validation-size", "5")  # fmt: skip
    assert_one_line_error(run, "out of memory (MemoryError: Unable to allocate 359. MiB", "try smaller --sizes")


def test_the_command_line_gives_the_loggers_levels_back(tmp_path):
    import logging

    before = logging.getLogger("gpunet").level, logging.getLogger("gpunet.download").level
    cli("data", "download", "--quiet", "--data-dir", tmp_path / "none")  # fails at once (a missing folder is fine)
    cli("info")
    assert (logging.getLogger("gpunet").level, logging.getLogger("gpunet.download").level) == before
