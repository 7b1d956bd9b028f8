"""What outlives a training run: its manifest, its JSON-lines log, and its files (locked for the run,
checked before training); model files are in :mod:`gpunet.model_files`, signals in :mod:`gpunet.signals`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import subprocess
import uuid
from pathlib import Path

import numpy as np

from . import __version__
from .data import DataError
from .files import FileError, check_memory, open_regular
from .model_files import save_network, stored_run
from .signals import uninterrupted
from .validation import COUNT, NON_NEGATIVE_REAL, POSITIVE_INT, POSITIVE_REAL, check, check_sizes
from .writing import atomic_write, check_writable, refuse_temporary, remove_stale_parts

# ----------------------------------------------------------------------------- manifest


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open_regular(path, "data file") as f:
        try:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


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
    """What a run needs to be understood and repeated later; ``data`` maps each data file to its SHA-256."""
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


# ----------------------------------------------------------------------------- logs

MAX_LOG_BYTES = 1 << 28


class JsonLog:
    """A JSON-lines file, the run's manifest first, then one object per epoch; rewritten whole each time.

    ``kept`` are the lines of the same run's log to continue (a resumed run appends to them).
    """

    def __init__(self, path, manifest: dict, kept=(), resumed_at: int | None = None):
        self.path = Path(path)
        head = {"type": "resumed", "at_epoch": resumed_at} if kept else {"type": "manifest"}
        self.lines = [*kept, json.dumps({**head, **manifest})]
        self._write()

    def append(self, record: dict) -> None:
        self.lines.append(json.dumps({"type": "epoch", **record}))
        self._write()

    def _write(self) -> None:
        text = "\n".join(self.lines) + "\n"
        with uninterrupted():
            atomic_write(self.path, lambda f: f.write(text.encode()))


def _read_text(path, what: str) -> str:
    refuse_temporary(path)
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_LOG_BYTES:
            raise DataError(f"{path}: {size} bytes, far more than a gpunet log; not a JSON-lines log")
        check_memory(2 * size, f"{path}")
        try:
            return f.read().decode()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a gpunet JSON-lines log ({e})") from None


def read_log(path) -> tuple[dict, list[dict]]:
    """(manifest, epoch records) of a log written by :class:`JsonLog`, each epoch record checked."""
    head, epochs = {}, []
    for number, line in enumerate(_read_text(path, "JSON-lines log").splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError as e:
            raise DataError(f"{path}, line {number}: not JSON ({e})") from None
        if not isinstance(o, dict):
            raise DataError(f"{path}, line {number}: not a JSON object; not a gpunet log")
        if number == 1 and o.get("type") == "manifest":
            head = o
        if o.get("type") != "epoch":
            continue
        check(f"{path}, line {number}: 'epoch'", o.get("epoch"), COUNT, error=DataError)
        for key in ("accuracy", "training_cost"):
            if key in o:
                check(f"{path}, line {number}: {key!r}", o[key], NON_NEGATIVE_REAL, error=DataError)
        epochs.append(o)
    if not head and not epochs:
        raise DataError(f"{path}: not a gpunet JSON-lines log (no manifest, no epochs)")
    return head, epochs


def _log_lines_of(path, before_epoch: int) -> list[str]:
    """The lines of this run's log ``path`` to keep when the run resumes at ``before_epoch``."""
    read_log(path)  # every line checked before any is kept
    kept = []
    for line in _read_text(path, "JSON-lines log").splitlines():
        if line.strip():
            o = json.loads(line)
            if o.get("type") != "epoch" or o["epoch"] < before_epoch:  # the epochs after the checkpoint are redone
                kept.append(line)
    return kept


def _log_run(path) -> str | None:
    with open_regular(path, "JSON-lines log") as f:
        first = f.readline(1 << 20)
    try:
        head = json.loads(first.decode())
    except (UnicodeDecodeError, ValueError):
        raise DataError(f"{path}: not a gpunet JSON-lines log") from None
    if not (isinstance(head, dict) and head.get("type") == "manifest"):
        raise DataError(f"{path}: not a gpunet JSON-lines log")
    return head.get("run") if isinstance(head.get("run"), str) else None


# ----------------------------------------------------------------------------- training runs

SETTINGS = {  # what changes a run's results, stored in every checkpoint and required to resume
    "sizes": None,
    "epochs": COUNT,
    "batch_size": POSITIVE_INT,
    "eta": POSITIVE_REAL,
    "seed": COUNT,
    "validation_size": COUNT,
}


def checkpoint_settings(net, path) -> tuple[dict, str]:
    """(settings, run id) of a checkpoint, refused in one line when one is missing or of the wrong type."""
    record = net.record
    settings = record.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise DataError(f"{path}: a saved model, not a checkpoint (it has no training settings); cannot resume")

    def bad(message):
        return DataError(f"{path}: cannot resume: {message}")

    for key, interval in SETTINGS.items():
        if key not in settings:
            raise bad(f"the checkpoint does not record its {key!r} (written by an older gpunet?)")
        settings[key] = (
            check_sizes(settings[key], bad) if interval is None else check(key, settings[key], interval, bad)
        )
    dtype = settings.get("dtype")
    if settings["sizes"] != net.sizes or dtype not in ("float32", "float64") or net.backend.dtype(dtype) != net.dtype:
        raise bad("its settings do not match its network (sizes or dtype)")
    data = settings.get("data")
    if not (isinstance(data, list) and all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in data)):
        raise bad("the checkpoint does not record which data it was trained on ('data')")
    run = record.get("run")
    if not isinstance(run, str) or not run:
        raise bad("the checkpoint does not record its run id")
    return settings, run


def new_run_id() -> str:
    return uuid.uuid4().hex


class RunFiles:
    """The files a training run writes, locked for the run and checked before any training.

    ``targets`` maps each flag (``--checkpoint``, ``--log``, ``--save``) to its path or None. A file
    already there is overwritten only when it is what the flag writes and belongs to this run
    (a resumed run continues its own checkpoint and log), or with ``force``.
    """

    KINDS = {"--checkpoint": "model", "--save": "model", "--log": "log"}

    def __init__(self, targets: dict, run: str, resumed_at: int | None = None, force: bool = False):
        self.paths = {flag: Path(p) for flag, p in targets.items() if p is not None}
        self.run, self.resumed_at, self.force = run, resumed_at, force
        self.locks: list[tuple] = []  # (FileLock, resolved lock path)
        self.kept_log: list[str] | None = None
        self.log: JsonLog | None = None
        self.saved_epoch = None  # the last epoch (counted from 0) whose checkpoint is complete
        models = {p.resolve() for flag, p in self.paths.items() if self.KINDS[flag] == "model"}
        if "--log" in self.paths and self.paths["--log"].resolve() in models:
            raise DataError(f"--log {self.paths['--log']}: the same file as a model output; give the log its own name")

    def __enter__(self):
        try:
            for flag, path in self.paths.items():
                check_writable(path, flag)
            for flag, path in self.paths.items():
                self._lock(flag, path)
            for flag, path in self.paths.items():
                remove_stale_parts(path)
                if path.exists():
                    self._may_overwrite(flag, path)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for lock, lock_path in reversed(self.locks):
            with contextlib.suppress(OSError):
                # Unlinked while still held, so no debris is left: a waiter that flocks the old
                # inode sees st_nlink 0 and starts over (filelock >= 4), so two never both hold it.
                os.unlink(lock_path)
            lock.release()
        self.locks = []

    def _lock(self, flag: str, path: Path) -> None:
        from filelock import FileLock, Timeout

        lock_path = path.parent / f".{path.name}.lock"
        if any(p == lock_path.resolve() for _, p in self.locks):
            return  # the same file under two flags
        lock = FileLock(lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise DataError(
                f"{flag} {path}: another gpunet training is writing it now (lock {lock_path}); "
                "wait for it to end, or give another name"
            ) from None
        except OSError as e:
            raise DataError(f"{flag} {path}: cannot take the lock {lock_path} ({e.strerror or e})") from None
        self.locks.append((lock, lock_path.resolve()))

    def _may_overwrite(self, flag: str, path: Path) -> None:
        kind = self.KINDS[flag]
        try:
            run = stored_run(path) if kind == "model" else _log_run(path)
        except (DataError, FileError):  # not ours, or not readable (another user's file): --force replaces it
            if self.force:
                return
            raise DataError(
                f"{flag} {path}: the file exists and is not a gpunet {kind}; "
                "give another name, or --force to overwrite it"
            ) from None
        if run == self.run:
            if kind == "log" and self.resumed_at:
                self.kept_log = _log_lines_of(path, self.resumed_at)
            return
        if not self.force:
            hint = f"resume it with --resume {path}, " if flag == "--checkpoint" else ""
            raise DataError(
                f"{flag} {path}: holds another run's {kind}; {hint}give another name, or --force to overwrite it"
            )

    def start_log(self, manifest: dict) -> None:
        if "--log" in self.paths:
            self.log = JsonLog(self.paths["--log"], manifest, self.kept_log or (), self.resumed_at)

    def after_epoch(self, net, entry: dict, record: dict) -> None:
        """Log the epoch, then checkpoint it (a checkpoint is never ahead of its log); Ctrl-C waits for both."""
        with uninterrupted():
            if self.log is not None:
                self.log.append(entry)
            if "--checkpoint" in self.paths:
                save_network(net, self.paths["--checkpoint"], record)
                self.saved_epoch = entry["epoch"]

    def save(self, net, record: dict) -> Path | None:
        if "--save" in self.paths:
            save_network(net, self.paths["--save"], record)
            return self.paths["--save"]
        return None
