"""One ``backend`` fixture over every available array namespace (after SciPy's and scikit-learn's xp fixtures),
the MNIST-like data folders in two sizes, and the CUDA kernel run on the CPU."""

import os
import platform
import re
import shutil
import signal
import subprocess
from pathlib import Path

import array_api_strict
import numpy as np
import pytest

from gpunet.backend import Backend, BackendError, get_backend

# A suite started in the background (`(pytest &)`, nohup, some CI wrappers) inherits an ignored SIGINT, which its
# children keep, so the Ctrl-C tests' children would never see one. Python's own handler restores the foreground case.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def strict_backend(device_name: str = "CPU_DEVICE") -> Backend:
    """array_api_strict refuses non-standard calls and, off its default device, any mixing of devices."""
    device = array_api_strict.Device(device_name)
    return Backend(
        xp=array_api_strict,
        device=device,
        name=f"array_api_strict:{device_name}",
        description=f"array_api_strict {device_name}",
        library=f"array_api_strict {array_api_strict.__version__}",
    )


def _make(name: str) -> Backend:
    if name == "numpy":
        return get_backend("cpu")
    if name == "strict":
        return strict_backend()
    if name == "strict-device1":
        return strict_backend("device1")
    try:
        return get_backend("cuda")
    except BackendError as e:
        pytest.skip(f"no usable CUDA: {e}")


BACKENDS = [
    pytest.param("numpy"),
    pytest.param("strict"),
    pytest.param("strict-device1"),
    pytest.param("cupy", marks=pytest.mark.gpu),
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> Backend:
    return _make(request.param)


@pytest.fixture(autouse=True)
def no_internet_mirrors(monkeypatch):
    """Downloads in tests go to loopback only: by default to a closed port, so they fail at once."""
    monkeypatch.setenv("GPUNET_MNIST_MIRRORS", "http://127.0.0.1:9/")


@pytest.fixture(autouse=True)
def own_cuda_check_cache(tmp_path_factory, monkeypatch):
    """On a GPU, the CUDA kernel's check keeps its verdict in this session's folder, never in the machine's cache."""
    from gpunet.kernels.cuda import verdicts

    folder = tmp_path_factory.getbasetemp() / "cuda-check"
    monkeypatch.setattr(verdicts, "folder", lambda: folder)


@pytest.fixture
def fresh_detection():
    """Each kernel detects once per process whether it can run here: start and leave each test with none known."""
    from gpunet.kernels import numba_cpu
    from gpunet.kernels.cuda import launcher

    detections = (numba_cpu._detect, numba_cpu._detect_vector, launcher._detect)
    for detect in detections:
        detect.cache_clear()
    yield
    for detect in detections:
        detect.cache_clear()


MNIST_LIKE = {"tiny": (60, 20, 4, 4), "small": (330, 120, 8, 8)}  # training images, test images, rows, columns


@pytest.fixture(scope="session")
def mnist_like(tmp_path_factory):
    """``mnist_like("tiny")`` or ``("small")``: the folder of an MNIST-like IDX dataset of that size (random
    images, every class in training), written once per session; tests read it, never write into it."""
    from helpers import write_mnist_like

    made: dict[str, Path] = {}

    def folder(size: str) -> Path:
        if size not in made:
            n_train, n_test, rows, cols = MNIST_LIKE[size]
            made[size] = tmp_path_factory.mktemp(f"mnist-{size}")
            write_mnist_like(made[size], n_train, n_test, rows=rows, cols=cols)
        return made[size]

    return folder


@pytest.fixture
def small_data(tmp_path):
    """The folder of a small MNIST-like dataset (40 and 10 images of 4x4) in tmp_path / "d", for one test."""
    from helpers import small_mnist

    return small_mnist(tmp_path / "d", 40, 10, rows=4, cols=4)


@pytest.fixture
def small_model(tmp_path, small_data):
    """The path of a 16,10 network trained one epoch on small_data, saved with its log beside it in tmp_path."""
    from helpers import train_small

    assert train_small(small_data, "--save", tmp_path / "model.npz", "--log", tmp_path / "run.jsonl").returncode == 0
    return tmp_path / "model.npz"


@pytest.fixture(scope="session")
def scaled_digits():
    """Twenty MNIST test digits (light on black, 28x28, in [0, 1]) and their labels."""
    from helpers import MNIST

    from gpunet.data import load_host

    images, labels = load_host(MNIST).test
    return images[:20].reshape(20, 28, 28) / 255.0, labels[:20]


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


# ---- the CUDA kernel on the CPU (tests/cuda_emu), shared by the kernel's tests and its check's ----------------

EMU = Path(__file__).with_name("cuda_emu")
BUILDS = {
    "plain": ["-O1"],
    "thread": ["-O1", "-g", "-fsanitize=thread"],
    "address": ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"],
    # Misaligned loads and stores, which x86 tolerates and a GPU faults on; signed overflow; out-of-bounds indices.
    "undefined": ["-O1", "-g", "-fsanitize=undefined", "-fno-sanitize-recover=all"],
    "fma": ["-O2", "-ffp-contract=fast"],  # a*b+c as one fused multiply-add, as nvcc compiles it (plus fma_flags)
}


def fma_flags() -> list[str] | None:
    """The g++ flags that let it emit fused multiply-adds on this CPU, or None where it has none."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return []
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return ["-mfma"] if re.search(r"^flags\s*:.*\bfma\b", cpuinfo, re.M) else None


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    """(build name, kernel source or None for gpunet's) -> path of the harness binary, built once per session."""
    from gpunet.kernels.cuda import launcher as cuda

    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        pytest.skip("needs g++ (C++20) to run the CUDA kernel on the CPU")
    folder, built = tmp_path_factory.mktemp("cuda_emu"), {}

    def build(kind: str, source: Path | None = None) -> Path:
        if (kind, source) not in built:
            out = folder / f"harness-{kind}-{len(built)}"
            flags = BUILDS[kind]
            if kind == "fma":
                if (extra := fma_flags()) is None:
                    pytest.skip("this CPU has no fused multiply-add to compile the kernel as nvcc does")
                flags = [*flags, *extra]
            include = [] if source is None else [f"-I{source.parent}"]  # found first: a changed copy of the kernel
            cmd = [cxx, "-std=c++20", "-pthread", *flags, *include, f"-I{EMU}", f"-I{cuda.SOURCE.parent}"]
            cmd += ["-Wall", "-o", str(out), str(EMU / "harness.cpp")]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode and kind != "plain" and "sanitize" in result.stderr:
                pytest.skip(f"g++ cannot build with -fsanitize={kind}: {result.stderr.strip()[:300]}")
            assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
            built[kind, source] = out
        return built[kind, source]

    return build


@pytest.fixture
def cuda_backend():
    """The CUDA backend where the CUDA kernel can run (``pytest -m gpu``); the test skips itself elsewhere."""
    from gpunet.kernels.cuda import launcher as cuda

    try:
        backend = get_backend("cuda")
    except Exception as e:  # noqa: BLE001 - BackendError, or CuPy missing
        pytest.skip(f"no usable CUDA: {e}")
    if reason := cuda.CudaEpoch.unusable():
        pytest.skip(reason)
    return backend


@pytest.fixture
def quick(monkeypatch):
    """Downloads judged stalled after 1 s instead of 15, and connections given 2 s: hostile servers fail fast."""
    import gpunet.io.download

    monkeypatch.setattr(gpunet.io.download, "GRACE_SECONDS", 1.0)
    monkeypatch.setattr(gpunet.io.download, "CONNECT_SECONDS", 2.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """An MNIST-like folder of its own for each test module (120 training and 40 test images of 8x8, 4 classes);
    modules whose tests need other data define their own ``data_dir``."""
    from helpers import write_mnist_like

    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 120, 40, rows=8, cols=8, n_classes=4)
    return folder
