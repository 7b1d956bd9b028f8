"""What a run needs to be understood and repeated later: the manifest, the data's checksums, a run id."""

from __future__ import annotations

import os
import platform
import subprocess
import uuid
from pathlib import Path

import numpy as np

from .._version import __version__


def git_info(package_dir=None) -> dict:
    """The commit of gpunet's own git checkout, and whether its tracked files differ from it.

    Only when gpunet runs from the top of a checkout (``gpunet/`` at the repository's root);
    an installed copy inside some other repository says nothing: ``{"git_commit": None}``.
    """
    package_dir = Path(package_dir or Path(__file__).parent).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no GIT_DIR from elsewhere

    def git(*args):
        run = subprocess.run(
            ["git", *args], cwd=package_dir, capture_output=True, text=True, timeout=10, env=env, check=False
        )
        return run.stdout.strip() if run.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != package_dir.parent:
            return {"git_commit": None}
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}
    if commit is None:
        return {"git_commit": None}
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
