"""gpunet: the network of Nielsen's *Neural Networks and Deep Learning*, ch. 1, on NumPy or CuPy."""

__version__ = "0.1.0"

from .backend import Backend, BackendError, get_backend  # noqa: E402
from .errors import ConfigError, GpunetError  # noqa: E402
from .network import EpochResult, Network  # noqa: E402
from .sweep import Sweep  # noqa: E402
from .sweep_grid import Grid  # noqa: E402

__all__ = [
    "Backend",
    "BackendError",
    "ConfigError",
    "EpochResult",
    "GpunetError",
    "Grid",
    "Network",
    "Sweep",
    "get_backend",
    "__version__",
]
