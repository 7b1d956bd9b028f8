"""Test helpers: the book's initialisation contract, replayed independently of gpunet."""

import contextlib
import gzip
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "data"  # the real MNIST files shipped with the checkout


def book_parameters(sizes, seed):
    """What ``Network(sizes, seed)`` must start from, and the generator left after drawing it."""
    rng = np.random.default_rng(seed)
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    return biases, weights, rng


def synthetic_data(rng, n, n_in, n_out):
    """n random examples: inputs in [0, 1) as rows, one-hot targets, and the labels."""
    x = rng.random((n, n_in))
    labels = rng.integers(0, n_out, n)
    return x, np.eye(n_out)[labels], labels


def write_idx(path, array, code=None, compress=None):
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz)."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    array = np.asarray(array)
    code = codes[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    compress = str(path).endswith(".gz") if compress is None else compress
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_mnist_like(folder, n_train, n_test, rows=28, cols=28, n_classes=10, seed=0, raw=False):
    """A small IDX dataset in the MNIST file layout, with random images and labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = "" if raw else ".gz"
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
        labels = rng.integers(0, n_classes, n).astype(np.uint8)
        if prefix == "train":
            labels[: min(n, n_classes)] = np.arange(min(n, n_classes))  # every class appears in training
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        out[prefix] = (images, labels)
    return out


def small_mnist(folder, n_train=30, n_test=10, **layout):
    """Return folder, now holding a small MNIST-like dataset (n_train and n_test images, 28x28 unless told)."""
    write_mnist_like(folder, n_train, n_test, **layout)
    return folder


def off_centre(digit, path):
    """Return path, now a PNG of digit as a person might draw it: dark on a large white sheet, 5x larger, top left."""
    from PIL import Image

    big = Image.fromarray(np.uint8(255 - digit * 255)).resize((140, 140), Image.Resampling.BICUBIC)
    sheet = np.full((300, 400), 255, np.uint8)
    sheet[10:150, 20:160] = np.asarray(big)
    Image.fromarray(sheet).save(path)
    return path


class CliResult:
    """What a command run in-process returned: its exit status and what it printed."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args) -> CliResult:
    """Run ``gpunet ARGS`` in this process (fast); keep subprocesses for signals and interpreter start-up."""
    import contextlib
    import io

    from gpunet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, --version, usage errors
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return CliResult(code, out.getvalue(), err.getvalue())


def train_on(data_dir, *extra, device="cpu", epochs=1, validation_size=0):
    """Return the run of `gpunet train` on data_dir: one epoch on the CPU, no validation set unless told; then extra."""
    options = ("--device", device) if device else ()
    options += ("--epochs", epochs, "--validation-size", validation_size)
    return cli("train", *options, "--data-dir", data_dir, *extra)


def bench_on(data_dir, sizes, *extra, epochs=1, book_examples=0, validation_size=0):
    """Return the run of `gpunet bench` of sizes on data_dir: one epoch, no book loop, no validation set unless told."""
    options = ("--epochs", epochs, "--book-examples", book_examples, "--validation-size", validation_size)
    return cli("bench", "--data-dir", data_dir, "--sizes", sizes, *options, *extra)


def train_small(data_dir, *extra):
    """Return the run of ``gpunet train`` of a 16,10 network on data_dir: one epoch on the CPU, no validation set."""
    return train_on(data_dir, "--sizes", "16,10", *extra)


def assert_one_line_error(run, *fragments, status=2):
    """Exactly one line on stderr, no traceback, the given exit status, and each fragment in the line."""
    assert run.returncode == status, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def training_process(args, checkpoint: Path):
    """A real ``gpunet`` process, returned once it has written ``checkpoint`` (for signal tests; kill it after).

    Python ignores SIGINT in a background job of a non-interactive shell (`pytest &` in a script): the child
    restores the handler a terminal's Ctrl-C would meet.
    """
    import subprocess
    import sys
    import time

    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from gpunet.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not checkpoint.exists():
        proc.kill()
        raise AssertionError(proc.stderr.read() if proc.poll() is not None else "no checkpoint in 120 s")
    return proc


def stop_with(proc, signum, timeout=60):
    """Return the stderr of proc, a process that signum ends with status 128 + signum and no traceback (then killed)."""
    try:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    return err


@contextlib.contextmanager
def notes_of(logger: str):
    """Yields the list of the notes (gpunet's INFO records) of ``logger`` made while inside, as text."""
    import logging

    notes: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: notes.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield notes
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


class GPU(NamedTuple):
    """A GPU's limits, as the CUDA Programming Guide lists them per compute capability (PREFLIGHT.md section 2)."""

    arch: int  # sm_XX
    optin: int  # cudaDevAttrMaxSharedMemoryPerBlockOptin, bytes
    per_sm: int  # shared memory an SM, bytes
    sms: int
    static: int  # static shared memory NVRTC's cubins of both kernels carry there (cuobjdump: 1 KiB from sm_90)


# The device table: the GPUs users own, from the T4 to the B200.
GPUS = {
    "T4": GPU(75, 65536, 65536, 40, 0),
    "A100": GPU(80, 166912, 167936, 108, 0),
    "RTX 3090": GPU(86, 101376, 102400, 82, 0),
    "RTX 4090": GPU(89, 101376, 102400, 128, 0),
    "L4": GPU(89, 101376, 102400, 58, 0),
    "RTX 5090": GPU(120, 101376, 102400, 170, 1024),
    "H100": GPU(90, 232448, 233472, 132, 1024),
    "B200": GPU(100, 232448, 233472, 148, 1024),
}
