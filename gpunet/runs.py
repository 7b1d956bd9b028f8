"""What outlives a run: saved networks and checkpoints (.npz), JSON-lines logs, and the run manifest."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .data import DataError


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path, flag: str) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise DataError(f"{flag} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise DataError(f"{flag} {path}: folder {folder} is not writable")


def save_network(net, path, record: dict) -> None:
    backend = net.backend
    arrays: dict[str, np.ndarray] = {"sizes": np.asarray(net.sizes, np.int64)}
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"w{l}"], arrays[f"b{l}"] = backend.to_host(w), backend.to_host(b)
    state = {"epoch": net.epoch, "rng": net.rng.bit_generator.state, "record": record}
    arrays["state"] = np.asarray(json.dumps(state))  # a unicode string: no pickle needed to read it
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))  # as load() reads it


def load_network(cls, path, device):
    path = Path(path)
    try:
        # np.load(path) leaves its file open when the zip is damaged: open it here, so it is always closed
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        sizes = [int(n) for n in arrays["sizes"]]
        state = json.loads(str(arrays["state"]))
        weights = [arrays[f"w{l}"] for l in range(len(sizes) - 1)]
        biases = [arrays[f"b{l}"] for l in range(len(sizes) - 1)]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except ValueError as e:  # includes "Object arrays cannot be loaded when allow_pickle=False"
        raise DataError(f"{path}: refused: not a gpunet model ({e})") from None
    except Exception as e:  # noqa: BLE001 - a damaged zip, a missing key: the file is not a model
        raise DataError(f"{path}: not a gpunet model ({type(e).__name__}: {e})") from None
    dtype = str(weights[0].dtype)
    shapes_ok = all(
        w.shape == (n_out, n_in) and b.shape == (n_out, 1) and str(w.dtype) == str(b.dtype) == dtype
        for w, b, n_in, n_out in zip(weights, biases, sizes[:-1], sizes[1:])
    )
    if not shapes_ok or dtype not in ("float32", "float64"):
        raise DataError(f"{path}: not a gpunet model (parameters do not match sizes {sizes})")
    net = cls(sizes, seed=0, device=device, dtype=dtype)
    net.weights = [net.backend.asarray(w) for w in weights]
    net.biases = [net.backend.asarray(b) for b in biases]
    net.rng.bit_generator.state = state["rng"]
    net.epoch = int(state["epoch"])
    net.record = state.get("record", {})
    return net


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    """The commit of the gpunet source tree, when it is a git checkout."""
    try:
        run = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def manifest(backend, settings: dict, data_files, pinned_bytes: int) -> dict:
    """What a run needs to be understood and repeated later."""
    return {
        "gpunet": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": backend.name,
        "device_name": backend.description,
        "array_library": backend.library,  # with CUDA runtime and driver versions on a GPU
        "numpy": np.__version__,
        "settings": settings,
        "data": {str(p): file_sha256(p) for p in data_files},
        "bytes_pinned_on_device": pinned_bytes,
    }


class JsonLog:
    """A JSON-lines file, the run's manifest first, then one object per epoch; rewritten whole each time."""

    def __init__(self, path, manifest: dict):
        self.path = Path(path)
        self.lines = [json.dumps({"type": "manifest", **manifest})]
        self._write()

    def append(self, record: dict) -> None:
        self.lines.append(json.dumps({"type": "epoch", **record}))
        self._write()

    def _write(self) -> None:
        text = "\n".join(self.lines) + "\n"
        atomic_write(self.path, lambda f: f.write(text.encode()))


def read_log(path) -> tuple[dict, list[dict]]:
    """(manifest, epoch records) of a log written by :class:`JsonLog`."""
    try:
        lines = Path(path).read_text().splitlines()
        objects = [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a gpunet JSON-lines log ({e})") from None
    if not objects or not all(isinstance(o, dict) for o in objects):
        raise DataError(f"{path}: not a gpunet JSON-lines log")
    head = objects[0] if objects[0].get("type") == "manifest" else {}
    return head, [o for o in objects if o.get("type") == "epoch"]
