"""``gpunet info``: the backends and devices found, versions, the epoch kernels, and where the data is."""

from __future__ import annotations

import platform

from .._version import __version__
from ..backend import CudaUnusable, get_backend
from ..data import DataError
from ..kernels import describe
from . import options
from .common import load_data

NAME = "info"
HELP = "show the backends and devices found, versions, and where the data is"


def add_arguments(parser) -> None:
    options.add_data_arguments(parser, split=False, download=False)


def run(args) -> int:
    cpu = get_backend("cpu")
    print(f"gpunet {__version__} | Python {platform.python_version()} | {platform.platform()}")
    print(f"cpu: {cpu.description} | {cpu.library}")
    try:
        cuda = get_backend("cuda")
        print(f"cuda: {cuda.name} {cuda.description} | {cuda.library}")
    except CudaUnusable as e:  # nothing was asked for: why CUDA cannot run, and the fix
        print(f"cuda: not usable: {e.reason}")
    for line in describe():
        print(line)
    try:
        print(f"data: {load_data(args).describe()}")
    except DataError as e:
        print(f"data: not usable: {e}")
    return 0
