"""What a run needs to be understood and repeated later: the manifest, the data's checksums, a run id."""

from __future__ import annotations

import platform
import uuid
from pathlib import Path

import numpy as np

from .._version import __version__
from ..io.peers import git


def git_info(package_dir=None) -> dict:
    """Returns the commit of gpunet's own git checkout, and whether its tracked files differ from it.

    Only when gpunet runs from the top of a checkout (``gpunet/`` at the repository's root);
    an installed copy inside some other repository says nothing: ``{"git_commit": None}``.
    """
    package_dir = Path(package_dir or Path(__file__).parents[1]).resolve()
    top = git(package_dir, "rev-parse", "--show-toplevel")
    commit = git(package_dir, "rev-parse", "HEAD") if top and Path(top).resolve() == package_dir.parent else None
    if commit is None:
        return {"git_commit": None}
    status = git(package_dir, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def manifest(backend, settings: dict, data: dict, pinned_bytes: int, run: str) -> dict:
    """What a run needs to be understood and repeated later; ``data`` maps each data file to its SHA-256
    (:func:`gpunet.io.identity.checksums`: of its decoded content)."""
    return {
        "run": run,
        "gpunet": __version__,
        **git_info(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": backend.name,
        "device_name": backend.description,
        "array_library": backend.library,  # with CUDA runtime and driver versions on a GPU
        "numpy": np.__version__,
        "settings": settings,
        "data": data,
        "bytes_pinned_on_device": pinned_bytes,
    }


def new_run_id() -> str:
    return uuid.uuid4().hex
