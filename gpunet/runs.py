"""What outlives a run: saved networks and checkpoints (.npz), JSON-lines logs, the run manifest,
and the files of one training run (locked, checked before training, safe from Ctrl-C and SIGTERM)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data import DataError
from .files import check_memory, open_regular
from .validation import COUNT, NON_NEGATIVE_REAL, POSITIVE_INT, POSITIVE_REAL, check, check_sizes

# ----------------------------------------------------------------------------- interruptions


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a scheduler), handled exactly as Ctrl-C is; the exit status is 143."""


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), also as PID 1 in a container."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_held: list[int] | None = None  # the signals held by the outermost uninterrupted() under way


@contextlib.contextmanager
def uninterrupted():
    """Finish a write before Ctrl-C or SIGTERM takes effect: the signal is held, then raised after it."""
    global _held
    if _held is not None or threading.current_thread() is not threading.main_thread():
        yield  # already held by an enclosing block, or signals cannot be handled here
        return
    _held = held = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _held = None
    if signal.SIGTERM in held:
        raise Terminated()
    if held:
        raise KeyboardInterrupt()


# ----------------------------------------------------------------------------- writing files


def _part_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    The temporary, ``.NAME.XXXXXXXX.part``, is hidden and never has the name of a result; a
    killed process leaves it behind, and :func:`remove_stale_parts` clears it on the next run.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


PART = re.compile(r"\..+\.[a-z0-9_]{8}\.part")  # .NAME. + mkstemp's 8 characters + .part


def refuse_temporary(path) -> None:
    """A temporary of :func:`atomic_write` is never read as a result."""
    if PART.fullmatch(Path(path).name):
        raise DataError(f"{path}: a temporary left by an interrupted write, not a result; read the file it was for")


def remove_stale_parts(path) -> list[Path]:
    """Remove the temporaries that a killed writer of ``path`` left (call only while holding its lock)."""
    path = Path(path)
    stale = re.compile(re.escape(_part_prefix(path)) + r"[a-z0-9_]{8}\.part")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if stale.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(path, flag: str) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    path = Path(path)
    try:
        _check_writable(path, flag)
    except OSError as e:  # a folder on the way that cannot be searched, a name too long, ...
        raise DataError(f"{flag} {path}: cannot write there ({e.strerror or e})") from None


def _check_writable(path: Path, flag: str) -> None:
    if path.is_dir():
        raise DataError(f"{flag} {path}: a folder; give a file name (e.g. {path / 'run.npz'})")
    if path.exists() and not path.is_file():
        raise DataError(f"{flag} {path}: not a regular file (a pipe, device or socket); give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"{flag} {path}: folder {folder} does not exist")
    try:  # os.access misjudges read-only mounts and root: try what atomic_write will do
        fd, probe = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataError(f"{flag} {path}: folder {folder} is not writable ({e.strerror or e})") from None


# ----------------------------------------------------------------------------- model files

PCG64_STATE = {"state": int, "inc": int}
MAX_SIZES_BYTES = 1 << 16  # the sizes of a thousand-layer network
MAX_STATE_BYTES = 1 << 26  # the JSON of settings, manifest and epoch times: far less in practice


def save_network(net, path, record: dict) -> None:
    backend = net.backend
    arrays: dict[str, Any] = {"sizes": np.asarray(net.sizes, np.int64)}
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"w{l}"], arrays[f"b{l}"] = backend.to_host(w), backend.to_host(b)
    state = {"epoch": net.epoch, "rng": net.rng.bit_generator.state, "record": record}
    arrays["state"] = np.asarray(json.dumps(state))  # a unicode string: no pickle needed to read it
    with uninterrupted():
        atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))  # as load() reads it


class _ModelFile:
    """The members of a gpunet .npz read one by one, each checked before a byte of its data is inflated."""

    def __init__(self, zf: zipfile.ZipFile, path: Path):
        self.zf, self.path = zf, path

    def bad(self, what: str) -> DataError:
        return DataError(f"{self.path}: not a gpunet model: {what}")

    def header(self, name: str):
        """(open member, shape, dtype, Fortran order, data bytes declared) of member ``name``."""
        try:
            info = self.zf.getinfo(f"{name}.npy")
        except KeyError:
            raise self.bad(f"no {name!r} array") from None
        f = self.zf.open(info)
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except BaseException:
            f.close()
            raise
        return f, shape, dtype, fortran, info.file_size - f.tell()

    def array(self, name: str, shape=None, kinds="f", limit=None) -> np.ndarray:
        """Member ``name``, refused unless of the given shape (when known) and dtype kind, and not over ``limit``."""
        f, stored_shape, dtype, fortran, declared = self.header(name)
        with f:
            if dtype.hasobject or dtype.kind not in kinds:
                raise DataError(f"{self.path}: refused: array {name!r} has dtype {dtype}, not a gpunet model")
            if shape is not None and tuple(stored_shape) != tuple(shape):
                raise self.bad(f"array {name!r} has shape {stored_shape}, the sizes need {tuple(shape)}")
            nbytes = math.prod(stored_shape) * dtype.itemsize
            if declared != nbytes:
                raise self.bad(f"array {name!r} declares {declared} bytes, its shape needs {nbytes}")
            if limit is not None and nbytes > limit:
                raise self.bad(f"array {name!r} is {nbytes} bytes, more than any gpunet model has ({limit})")
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise self.bad(f"array {name!r} is cut short")
        flat = np.frombuffer(data, dtype)
        return flat.reshape(tuple(stored_shape), order="F" if fortran else "C").astype(dtype.newbyteorder("="))

    def state(self) -> dict:
        text = self.array("state", shape=(), kinds="U", limit=MAX_STATE_BYTES)
        try:
            state = json.loads(str(text))
        except ValueError as e:
            raise self.bad(f"its state is not JSON ({e})") from None
        if not isinstance(state, dict):
            raise self.bad("its state is not a JSON object")
        return state


def _open_model(path):
    """A context manager over a :class:`_ModelFile`; the file is closed on every path."""
    path = Path(path)
    refuse_temporary(path)

    @contextlib.contextmanager
    def opened():
        with open_regular(path, "gpunet model (.npz)") as raw:
            try:
                zf = zipfile.ZipFile(raw)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                raise DataError(f"{path}: not a gpunet model ({e})") from None
            with zf:
                try:
                    yield _ModelFile(zf, path)
                except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
                    # a damaged member: bad CRC, cut deflate stream, unsupported compression, bad npy header
                    raise DataError(f"{path}: not a gpunet model ({type(e).__name__}: {e})") from None

    return opened()


def _check_rng(model: _ModelFile, rng) -> np.random.Generator:
    generator = np.random.Generator(np.random.PCG64())
    if not (isinstance(rng, dict) and rng.get("bit_generator") == "PCG64" and isinstance(rng.get("state"), dict)):
        raise model.bad("its state has no PCG64 generator state ('rng')")
    fields = {**PCG64_STATE, "has_uint32": int, "uinteger": int}
    values = {**rng["state"], **{k: rng.get(k) for k in ("has_uint32", "uinteger")}}
    if not all(isinstance(values.get(k), t) and not isinstance(values.get(k), bool) for k, t in fields.items()):
        raise model.bad("its generator state ('rng') has missing or mistyped fields")
    try:
        generator.bit_generator.state = rng
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise model.bad(f"its generator state ('rng') is refused by NumPy ({e})") from None
    return generator


def load_network(cls, path, device):
    """A network from ``path``, the whole file checked against one schema before anything is built."""
    path = Path(path)
    with _open_model(path) as model:
        sizes = model.array("sizes", kinds="iu", limit=MAX_SIZES_BYTES)
        if sizes.ndim != 1:
            raise model.bad(f"sizes has shape {sizes.shape}, not a list")
        sizes = check_sizes(sizes.tolist(), error=model.bad)
        f, _, dtype, _, _ = model.header("w0")
        f.close()
        if str(dtype.newbyteorder("=")) not in ("float32", "float64"):
            raise DataError(f"{path}: refused: array 'w0' has dtype {dtype}, not a gpunet model")
        shapes = [((n_out, n_in), (n_out, 1)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        check_memory(sum(math.prod(w) + math.prod(b) for w, b in shapes) * dtype.itemsize, f"{path}: the parameters")
        weights: list[np.ndarray] = []
        biases: list[np.ndarray] = []
        for l, (w_shape, b_shape) in enumerate(shapes):
            for name, shape, into in ((f"w{l}", w_shape, weights), (f"b{l}", b_shape, biases)):
                a = model.array(name, shape)
                if a.dtype != dtype.newbyteorder("="):
                    raise model.bad(f"array {name!r} is {a.dtype}, w0 is {dtype}")
                if not np.isfinite(a).all():
                    raise model.bad(f"array {name!r} holds NaN or infinite values")
                into.append(a)
        state = model.state()
        epoch = check("its epoch counter", state.get("epoch"), COUNT, error=model.bad)
        generator = _check_rng(model, state.get("rng"))
        record = state.get("record", {})
        if not isinstance(record, dict):
            raise model.bad("its record is not a JSON object")
    net = cls(sizes, seed=0, device=device, dtype=str(weights[0].dtype))
    net.weights = [net.backend.asarray(w) for w in weights]
    net.biases = [net.backend.asarray(b) for b in biases]
    net.rng = generator
    net.epoch = epoch
    net.record = record
    return net


def stored_run(path) -> str | None:
    """The run id stored in a gpunet model file (None in one saved outside a run); DataError if not a model."""
    with _open_model(path) as model:
        record = model.state().get("record")
    run = record.get("run") if isinstance(record, dict) else None
    return run if isinstance(run, str) else None


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


def _log_lines_of(path, run: str | None, before_epoch: int) -> list[str] | None:
    """The lines of log ``path`` to keep when run ``run`` resumes at ``before_epoch``; None if not its log."""
    head, _ = read_log(path)
    if run is None or head.get("run") != run:
        return None
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
    if settings["sizes"] != net.sizes or settings.get("dtype") not in ("float32", "float64"):
        raise bad("its settings do not match its network (sizes or dtype)")
    if net.backend.dtype(settings["dtype"]) != net.dtype:
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
        except DataError:
            if self.force:
                return
            raise DataError(
                f"{flag} {path}: the file exists and is not a gpunet {kind}; "
                "give another name, or --force to overwrite it"
            ) from None
        if run == self.run:
            if kind == "log":
                self.kept_log = _log_lines_of(path, self.run, self.resumed_at or 0) if self.resumed_at else None
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
