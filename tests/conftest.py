"""One ``backend`` fixture over every available array namespace (after SciPy's and scikit-learn's xp fixtures)."""

import array_api_strict
import numpy as np
import pytest

from gpunet.backend import Backend, BackendError, get_backend


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


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
