"""Issue 20.13: the line saying CUDA cannot run here is worded per command; `gpunet info`, which asks for
nothing, says why CUDA is not usable without "requested" or a --device to change."""

import fake_cupy
import pytest
from helpers import MNIST, assert_one_line_error, cli


@pytest.mark.parametrize("mode", ["missing", "no-driver", "no-nvrtc"])
def test_info_says_why_without_a_request_or_a_flag(monkeypatch, mode):
    fake_cupy.install(monkeypatch, mode)
    run = cli("info", "--data-dir", MNIST)
    assert run.returncode == 0, run.stderr
    (cuda,) = [line for line in run.stdout.splitlines() if line.startswith("cuda: ")]
    assert cuda.startswith("cuda: not usable: ") and "requested" not in cuda and "--device" not in cuda, cuda


@pytest.mark.parametrize(
    "command, hint",
    [
        (["train"], "; use --device cpu to train on the CPU"),
        (["sweep", "--seeds", "1"], "; use --device cpu to train the sweep on the CPU"),
        (["evaluate", "m.npz"], "; use --device cpu to score on the CPU"),
        (["predict", "m.npz", "a.png"], "; leave out --device to classify on the CPU (the default)"),
        (["plot", "--misclassified", "m.npz", "-o", "w.png"], "; leave out --device to draw on the CPU (the default)"),
    ],
)
def test_each_command_says_what_it_can_do_without_a_gpu(monkeypatch, tmp_path, command, hint):
    monkeypatch.chdir(tmp_path)
    fake_cupy.install(monkeypatch, "missing")
    run = cli(*command, "--device", "cuda", *([] if command[0] == "predict" else ["--data-dir", MNIST]))
    assert_one_line_error(run, "CUDA requested but CuPy is not installed", "pip install 'gpunet[cuda12]'")
    assert run.stderr.rstrip().endswith(hint) and run.stderr.count("--device cpu") <= 1, run.stderr


def test_the_library_names_no_command_line_flag(monkeypatch):
    from gpunet.backend import CudaUnusable, get_backend

    fake_cupy.install(monkeypatch, "no-driver")
    with pytest.raises(CudaUnusable) as e:
        get_backend("cuda")
    assert "--device" not in str(e.value) and str(e.value) == f"CUDA requested but {e.value.reason}"


def test_the_error_survives_pickling_as_a_dask_worker_sends_it():
    import pickle

    from gpunet.backend import CudaUnusable

    error = pickle.loads(pickle.dumps(CudaUnusable("only 1 CUDA device(s) found", "cuda:3")))
    assert str(error) == "cuda:3 requested but only 1 CUDA device(s) found" and error.reason.startswith("only")
