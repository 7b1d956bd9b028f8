"""gpunet: the network of Nielsen's *Neural Networks and Deep Learning*, ch. 1, on NumPy or CuPy."""

from ._version import __version__
from .backend import Backend, BackendError, get_backend
from .errors import ConfigError, DataError, GpunetError
from .io.images import read_picture
from .network import EpochResult, History, Network
from .sweep import Grid, Sweep

__all__ = [
    "Backend",
    "BackendError",
    "ConfigError",
    "DataError",
    "EpochResult",
    "GpunetError",
    "Grid",
    "History",
    "Network",
    "Sweep",
    "get_backend",
    "read_picture",
    "__version__",
]
