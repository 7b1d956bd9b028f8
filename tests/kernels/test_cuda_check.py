"""The CUDA kernel's check on the user's GPU (gpunet/kernels/cuda/check.py), its verdicts kept by verdicts.py.

Without a GPU the check's child process runs the real .cu through the CPU emulation (tests/cuda_emu/standin.py is
the whole GPU: CuPy, its device and its identity; cuda_emu/child/sitecustomize.py puts it in the child); with one,
``pytest -m gpu`` runs the same child on the GPU.
No test here reads or writes the machine's own cache: XDG_CACHE_HOME points into tmp_path.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cuda_emu import standin
from helpers import assert_one_line_error, cli, notes_of, train_on, write_mnist_like

from gpunet import Network
from gpunet.backend import get_backend
from gpunet.cli import check as check_cli
from gpunet.kernels import choose, device_for, registry
from gpunet.kernels.cuda import check as cuda_check
from gpunet.kernels.cuda import launcher as cuda
from gpunet.kernels.cuda import verdicts

TESTS = Path(__file__).resolve().parents[1]
FOLDER = verdicts.folder  # platformdirs' (conftest points every other test at a folder of the session's)
BOOK = cuda_check.config_key(*cuda_check.BOOK)
FIRST_CASE = "float64 [784, 30, 10] mini-batch 10, 1 mini-batch"
# A mutated kernel, the build it runs in, and the case that must catch it.
MUTANTS = {
    "wrong scale": ("plain", "T(eta[net] / m)", "T(eta[net] / batch)"),  # eta/batch on the short last mini-batch
    "no barrier": ("thread", "__syncthreads();\n    const int na", "const int na"),  # ThreadSanitizer sees the race
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test's own, and a process that has neither verdicts nor notes yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(verdicts, "folder", FOLDER)
    monkeypatch.setattr(verdicts, "_known", {})
    monkeypatch.setattr(verdicts, "_said", set())
    return tmp_path / "cache" / "gpunet" / "cuda-check"


@pytest.fixture
def emulated_gpu(harness, cache, tmp_path, monkeypatch):
    """Make cuda:0 the emulated GPU, here and in the check's child; returns its backend."""

    def install(kind="plain", source=None, binary=None, **env):
        binary = binary or harness(kind, source)
        monkeypatch.setitem(sys.modules, "cupy", standin.cupy(binary, tmp_path))
        monkeypatch.setattr(cuda, "_detect", lambda: None)  # usable
        if source is not None:
            monkeypatch.setattr(cuda, "SOURCE", source)  # what the verdict's key hashes
        gpu = standin.gpu_backend()
        real = get_backend
        for module in (registry, check_cli):
            monkeypatch.setattr(module, "get_backend", lambda spec: gpu if spec != "cpu" else real(spec))
        site = [str(TESTS / "cuda_emu" / "child"), str(TESTS), os.environ.get("PYTHONPATH", "")]
        child = {
            "GPUNET_EMU_HARNESS": str(binary),
            "PYTHONPATH": os.pathsep.join(site),
            "TSAN_OPTIONS": "halt_on_error=1",
            **env,
        }
        for name, value in child.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(verdicts, "EXAMPLES", 40)  # the timed epoch: 40 examples, scaled to 50,000
        return gpu

    return install


def mutant(tmp_path, name) -> tuple[str, Path]:
    kind, old, new = MUTANTS[name]
    text = cuda.SOURCE.read_text()
    assert text.count(old) == 1, f"the mutation {name!r} no longer applies to {cuda.SOURCE.name}"
    source = tmp_path / name.replace(" ", "-") / cuda.SOURCE.name
    source.parent.mkdir()
    source.write_text(text.replace(old, new))
    return kind, source


def fake_child(monkeypatch, result=None, pause=0.0) -> list:
    """Replace the child with one answering ``result`` (passed, all timed) after ``pause``; returns its calls."""
    calls = []
    timed = {"cuda": 0.04, "portable": 5.0, "cpu": 0.15, "cpu_kernel": "numba"}

    def check_in_child(device, configs, limit=None):
        calls.append(tuple(configs))
        time.sleep(pause)
        return result or {"passed": True, "failure": None, "timings": {c: timed for c in configs}}, ""

    monkeypatch.setattr(verdicts, "check_in_child", check_in_child)
    return calls


# ---- the whole flow, on the emulated kernel --------------------------------------------------------------------


def test_a_kernel_that_passes_is_chosen_said_once_and_kept(emulated_gpu, cache, tmp_path):
    emulated_gpu()
    data, log = tmp_path / "data", tmp_path / "run.jsonl"
    write_mnist_like(data, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(data, "--sizes", "16,2", "--seed", "1", "--log", log, device="cuda")
    assert run.returncode == 0, run.stderr
    checking = run.stderr.splitlines()
    assert len(checking) == 2 and checking[0].startswith("gpunet: checking the cuda kernel on this Emulated GPU")
    assert checking[1].startswith("gpunet: ... the check passed in ")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    header = f"kernel cuda (checked on this Emulated GPU on {today}: "
    assert header in run.stdout and ", CPU " in run.stdout and "Epoch 0: " in run.stdout
    manifest = json.loads(log.read_text().splitlines()[0])
    assert manifest["kernel"]["name"] == "cuda" and "checked on this Emulated GPU" in manifest["kernel"]["reason"]
    (kept,) = cache.glob("*.json")
    record = json.loads(kept.read_text())
    assert record["passed"] and record["identity"]["gpu"] == "Emulated GPU"
    assert {BOOK, "16,2/10/float32"} <= set(record["timings"]), "the configuration asked for and the book's"
    verdicts._known.clear()  # the next run, a new process: reads the verdict, checks nothing
    again = train_on(data, "--sizes", "16,2", "--seed", "1", device="cuda")
    assert again.returncode == 0 and again.stderr == "" and header in again.stdout
    info = cli("info", "--data-dir", data)
    assert f"kernel cuda: usable, checked on this Emulated GPU on {today}: " in info.stdout


def test_a_mutated_kernel_fails_and_cuda_falls_back_in_one_line(emulated_gpu, cache, tmp_path):
    emulated_gpu(*mutant(tmp_path, "wrong scale"))
    data = tmp_path / "data"
    write_mnist_like(data, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(data, "--sizes", "16,2", device="cuda")
    assert run.returncode == 0 and " failed in " in run.stderr and len(run.stderr.splitlines()) == 2, run.stderr
    header = next(line for line in run.stdout.splitlines() if " | kernel " in line)
    assert "kernel portable (cuda: failed its check on this Emulated GPU on " in header
    assert f": {FIRST_CASE}: " in header and "(relative tolerance 1e-10)" in header
    report = Path(header.split("; report ")[1].rstrip(")"))
    text = report.read_text()
    assert "Emulated GPU" in text and "cupy: 14.2.0-emulated" in text and FIRST_CASE in text
    forced = train_on(data, "--sizes", "16,2", "--kernel", "cuda", device="cuda")
    assert forced.returncode == 0 and "Traceback" not in forced.stderr
    failure = header.split("failed its check on this Emulated GPU on ")[1].rsplit(")", 1)[0]
    warning = f"gpunet: warning: --kernel cuda runs a kernel that failed its check on this Emulated GPU on {failure}"
    assert forced.stderr.splitlines() == [warning]
    assert "kernel cuda (as asked; failed its check" in forced.stdout


def test_a_removed_barrier_fails_the_check(emulated_gpu, cache, tmp_path):
    gpu = emulated_gpu(*mutant(tmp_path, "no barrier"))
    kernel, why = choose(gpu, [784, 30, 10], "float64", 10)
    assert kernel.name == "portable" and why.startswith("cuda: failed its check on this Emulated GPU")
    assert f": {FIRST_CASE}: RuntimeError: the cuda kernel gpunet::sgd_epoch<double, " in why and "\n" not in why


def test_a_launch_the_watchdog_stops_ends_the_run_in_one_line(emulated_gpu, cache, tmp_path, monkeypatch):
    """cudaErrorLaunchTimeout (702): the display's watchdog stopped a launch, and the CUDA context with it."""
    gpu = emulated_gpu()
    fake_child(monkeypatch)
    assert registry.verdict_for(cuda.CudaEpoch, gpu, [16, 2], "float32", 10, check=True).passed  # checked before
    data = tmp_path / "data"
    write_mnist_like(data, 30, 10, rows=4, cols=4, n_classes=2)
    sys.modules["cupy"].faults.append(702)
    run = train_on(data, "--sizes", "16,2", "--kernel", "cuda", device="cuda")
    assert_one_line_error(run, "gpunet: error: the display's watchdog stopped the cuda kernel gpunet::sgd_epoch<")
    assert "--kernel portable" in run.stderr


def test_a_hanging_kernel_is_stopped_at_the_limit(emulated_gpu, cache, tmp_path, monkeypatch):
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")  # a launch that never returns
    hang.chmod(0o755)
    gpu = emulated_gpu(binary=hang)
    monkeypatch.setattr(verdicts, "LIMIT_S", 4.0)
    start = time.perf_counter()
    kernel, why = choose(gpu, [784, 30, 10], "float32", 10)
    assert time.perf_counter() - start < 30, "the child and the launch it started are killed together"
    assert kernel.name == "portable" and "did not finish within 4 s" in why


def test_a_child_that_aborts_is_reported(emulated_gpu, cache):
    gpu = emulated_gpu(GPUNET_EMU_ABORT="1")
    verdict = registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    assert not verdict.passed and "the check's process was killed by SIGABRT" in verdict.failure
    assert Path(verdict.report).is_file() and "SIGABRT" in Path(verdict.report).read_text()


# ---- what is kept, and when the check runs again ---------------------------------------------------------------


def test_a_changed_source_checks_again(emulated_gpu, cache, tmp_path, monkeypatch):
    gpu = emulated_gpu()
    calls = fake_child(monkeypatch)
    assert registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True).passed
    verdicts._known.clear()
    registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    assert len(calls) == 1, "kept"
    changed = tmp_path / "changed" / cuda.SOURCE.name
    changed.parent.mkdir()
    changed.write_text(cuda.SOURCE.read_text() + "// a comment is a change\n")
    monkeypatch.setattr(cuda, "SOURCE", changed)
    registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    assert len(calls) == 2 and len(list(cache.glob("*.json"))) == 2


def test_a_changed_nvrtc_checks_again(emulated_gpu, cache, monkeypatch):
    """NVRTC (a pip package of its own, nvidia-cuda-nvrtc) generates the code: another version, another verdict."""
    gpu = emulated_gpu()
    calls = fake_child(monkeypatch)
    registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    verdicts._known.clear()
    monkeypatch.setattr(sys.modules["cupy"].cuda.nvrtc, "getVersion", lambda: (12, 9))
    registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    assert len(calls) == 2 and len(list(cache.glob("*.json"))) == 2
    verdicts._known.clear()
    registry.verdict_for(cuda.CudaEpoch, gpu, [784, 30, 10], "float32", 10, check=True)
    assert len(calls) == 2, "the same NVRTC again: kept"


def test_two_first_runs_at_once_check_once(emulated_gpu, cache, monkeypatch):
    gpu = emulated_gpu()
    calls = fake_child(monkeypatch, pause=0.5)
    found = []

    def first_run():  # each as a new process would: nothing known yet
        found.append(verdicts.verdict(0, BOOK))

    runs = [threading.Thread(target=first_run) for _ in range(2)]
    monkeypatch.setattr(verdicts, "_known", {})
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert len(calls) == 1 and len(found) == 2 and found[0] == found[1] and found[0].passed
    assert gpu.name == "cuda:0"


def test_an_unwritable_cache_still_runs_checking_every_time(emulated_gpu, cache, tmp_path, monkeypatch):
    gpu = emulated_gpu()
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    calls = fake_child(monkeypatch)
    with notes_of("gpunet") as said:
        for _ in range(2):  # two runs
            verdicts._known.clear()
            kernel, _ = choose(gpu, [784, 30, 10], "float32", 10)
            assert kernel.name == "cuda"
    assert len(calls) == 2
    notes = [line for line in said if "cannot keep" in line]
    assert len(notes) == 1 and "checking in every run" in notes[0]


def test_auto_reads_the_kept_verdict_and_never_checks(emulated_gpu, cache, monkeypatch):
    gpu = emulated_gpu()
    cpu_kernel = registry.choose(get_backend("cpu"), [784, 30, 10], "float32", 10)[0].name
    slow = {"cuda": 0.9, "portable": 5.0, "cpu": 0.15, "cpu_kernel": cpu_kernel}
    calls = fake_child(monkeypatch, {"passed": True, "failure": None, "timings": {BOOK: slow}})
    assert device_for("auto", [784, 30, 10], "float32", 10).name == "cuda:0" and calls == []  # by MEASURED
    choose(gpu, [784, 30, 10], "float32", 10)  # the kernel about to train: checked
    assert calls == [(BOOK,)]
    for sizes, dtype in (([784, 30, 10], "float32"), ([784, 100, 10], "float64")):  # not timed: the book's figures
        backend = device_for("auto", sizes, dtype, 10)
        assert backend.name == "cpu"
        assert "(0.15 s/epoch measured here) beats the cuda kernel on cuda:0 (0.9)" in backend.note
    assert len(calls) == 1


def test_a_network_on_auto_never_starts_the_check_its_training_does(emulated_gpu, cache, monkeypatch, rng):
    emulated_gpu()
    calls = fake_child(monkeypatch)
    net = Network([6, 2], seed=0)  # device="auto"
    assert net.backend.name == "cuda:0" and calls == []
    x = rng.random((8, 6))
    net.SGD((x, np.eye(2)[rng.integers(0, 2, 8)]), 1, 4, 3.0, callback=None)
    assert calls == [("6,2/4/float32", BOOK)] and net.kernel == "cuda"


def test_gpunet_check_checks_again_and_says_where_it_keeps_it(emulated_gpu, cache, monkeypatch):
    emulated_gpu()
    calls = fake_child(monkeypatch)
    for _ in range(2):
        run = cli("check", "--device", "cuda")
        assert run.returncode == 0, run.stderr
    assert len(calls) == 2 and "cuda:0 (Emulated GPU): the cuda kernel checked on this Emulated GPU" in run.stdout
    assert f"  {BOOK}: cuda 0.04 s/epoch | portable on cuda:0 5 | cpu (numba) 0.15" in run.stdout
    assert str(cache) in run.stdout


def test_gpunet_check_without_a_gpu_is_one_line(cache):
    try:
        get_backend("cuda")
    except Exception:  # noqa: BLE001
        assert_one_line_error(cli("check"), "gpunet: error: ")
        assert_one_line_error(cli("check", "--device", "cpu"), "gpunet check checks a GPU")
        return
    pytest.skip("this machine has a usable GPU")


def test_the_checks_own_command_without_a_gpu_exits_2(capsys):
    try:
        get_backend("cuda")
    except Exception:  # noqa: BLE001
        assert cuda_check.main(["--no-timing"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gpunet: error: ") and err.count("\n") == 1
        return
    pytest.skip("this machine has a usable GPU")


# ---- on a GPU: pytest -m gpu runs the same child ---------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_passes_the_check_that_gpunet_runs_before_it_uses_the_kernel(cache):
    try:
        backend = get_backend("cuda")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no usable CUDA: {e}")
    result, tail = verdicts.check_in_child(backend.device.id, [BOOK])
    assert result["passed"], f"{result['failure']}\n{tail}"
    run = cli("check", "--device", backend.name)
    assert run.returncode == 0 and "the cuda kernel checked on this" in run.stdout, run.stdout + run.stderr
