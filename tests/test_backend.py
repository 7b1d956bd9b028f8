"""The backend seam: device strings, and one clear message for every way CUDA can be unusable."""

import pytest
from fake_cupy import install

from gpunet import backend as backend_module
from gpunet.backend import BackendError, get_backend


def test_cpu_is_numpy_through_array_api_compat():
    backend = get_backend("cpu")
    assert backend.xp.__name__ == "array_api_compat.numpy" and backend.name == "cpu"
    assert backend.library.startswith("numpy ") and backend.description


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu", ""])
def test_unknown_device_is_rejected(spec):
    with pytest.raises(BackendError, match="unknown device"):
        get_backend(spec)


@pytest.mark.parametrize(
    "mode, cause",
    [
        ("missing", "CuPy is not installed"),
        ("no-driver", "no CUDA driver or GPU"),
        ("no-nvrtc", "a CUDA library is missing or broken .*libnvrtc"),
    ],
)
def test_unusable_cuda_names_the_cause_and_the_fix(monkeypatch, mode, cause):
    install(monkeypatch, mode)
    with pytest.raises(BackendError, match=cause) as e:
        get_backend("cuda")
    message = str(e.value)
    assert "\n" not in message
    assert "--device" not in message  # the command line adds what each command can do without a GPU
    if mode != "no-driver":
        assert "pip install 'gpunet[cuda12]'" in message


def test_missing_gpu_index(monkeypatch):
    install(monkeypatch, "no-nvrtc")
    with pytest.raises(BackendError, match="cuda:3 requested but only 1"):
        get_backend("cuda:3")


@pytest.mark.parametrize("mode", ["missing", "no-driver", "no-nvrtc"])
@pytest.mark.parametrize("gpu", [False, True])
def test_auto_falls_back_to_the_cpu_in_one_short_line_only_with_a_gpu_present(monkeypatch, mode, gpu):
    install(monkeypatch, mode)
    monkeypatch.setattr(backend_module, "gpu_present", lambda: gpu)
    backend = get_backend("auto")
    assert backend.name == "cpu"
    if gpu:
        assert "CUDA is not usable; using the CPU" in backend.note and len(backend.note) < 100
    else:
        assert backend.note == ""


@pytest.mark.gpu
def test_cuda_backend_is_cupy():
    try:
        backend = get_backend("cuda")
    except BackendError as e:
        pytest.skip(str(e))
    assert backend.name == "cuda:0" and backend.library.startswith("cupy ")
    assert get_backend("auto").name == "cuda:0"
