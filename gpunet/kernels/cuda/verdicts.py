"""The kept verdicts of the CUDA kernel's check: what it found on each GPU, kept in the user's cache folder.

The check (:mod:`gpunet.kernels.cuda.check`) runs in a child process with a time limit when the kernel is about
to train on a GPU with no kept verdict, or with ``gpunet check``. Its verdict and timings are kept in ``<user
cache>/gpunet/cuda-check/``, one JSON file per key (:func:`identity`: the GPU, driver, runtime, NVRTC, CuPy and the
sha256 of the sources): any change checks again. Files are written atomically under a lock: two first runs check once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DataError, say
from ...io import verdicts_file
from ..base import config_key
from . import launcher as cuda

LIMIT_S = 120.0  # the check's time limit, compilation included
FAILED_TAIL = 40  # lines of the child's output kept in a report
BOOK = config_key(*cuda.BOOK)  # the configuration always timed
EXAMPLES = cuda.EPOCH  # examples of the kernel's timed epoch (the CPU emulation in the tests takes fewer)


def folder() -> Path:
    """Returns where verdicts are kept: ``~/.cache/gpunet/cuda-check`` on Linux."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("gpunet")) / "cuda-check"


def sources() -> list[Path]:
    """Returns the files whose change changes the verdict: the kernels' sources, their launcher, the check."""
    here = Path(__file__).parent  # the launcher, the scorer and the check (not imported: it imports the registry)
    return [*sorted(cuda.SOURCE.parent.glob("*.cu")), *(here / f"{m}.py" for m in ("launcher", "scorer", "check"))]


def identity(device: int) -> dict:
    """Returns everything the verdict on CUDA device ``device`` depends on (its key)."""
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(device)
    name = properties["name"]
    return {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{properties['major']}.{properties['minor']}",
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "nvrtc": ".".join(map(str, cupy.cuda.nvrtc.getVersion())),  # a package of its own; it generates the code
        "cupy": cupy.__version__,
        "sources_sha256": verdicts_file.sources_sha256(tuple(sources())),
    }


@dataclass
class Verdict:
    """The check's answer for one GPU: passed, or the failing case in one line; the seconds it measured."""

    passed: bool
    gpu: str
    date: str  # the day it was checked, UTC
    failure: str = ""
    report: str = ""  # a file a user can attach to a bug report (failures only)
    timings: dict = field(default_factory=dict)  # config_key -> {"cuda", "portable", "cpu": s/epoch, "cpu_kernel"}
    identity: dict = field(default_factory=dict)
    check_seconds: float = 0.0

    def seconds(self, config: str) -> dict | None:
        """Returns the measured s/epoch of ``config``, else of the book's configuration, else None."""
        return self.timings.get(config) or self.timings.get(BOOK)

    def describe(self, config: str | None = None) -> str:
        """Returns ``checked on this GPU on DATE: S s/epoch here, CPU S`` in one line, or the failure."""
        if not self.passed:
            return f"failed its check on this {self.gpu} on {self.date}: {self.failure}; report {self.report}"
        text = f"checked on this {self.gpu} on {self.date}"
        measured = self.seconds(config or "")
        if measured:
            sizes, batch, _ = cuda.BOOK
            which = "" if config in self.timings else f" for {list(sizes)} mini-batch {batch}"
            text += f": {measured['cuda']:.2g} s/epoch here{which}, CPU {measured['cpu']:.2g}"
        return text


_known: dict[str, Verdict] = {}  # this process's verdicts, by key
_said: set[str] = set()  # one-line notes already given in this process


def say_once(text: str) -> None:
    """Says ``text`` on stderr, unless this process has said it already."""
    if text not in _said:
        _said.add(text)
        say(text)


def _lookup(device: int) -> tuple[dict, str, Path]:
    """Returns the identity of CUDA device ``device``, its key and the file its verdict is kept in."""
    ident = identity(device)
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return ident, key, folder() / f"{key}.json"


def _read(path: Path, ident: dict) -> Verdict | None:
    """Returns the verdict on ``ident`` kept in ``path``, or None (none yet, or unreadable: check again)."""
    found = verdicts_file.read_verdict(path)
    return Verdict(**found) if found and found["identity"] == ident else None


def kept(device: int) -> Verdict | None:
    """Returns the verdict kept for CUDA device ``device``, or None where none is; it never checks."""
    ident, key, path = _lookup(device)
    if key not in _known and (found := _read(path, ident)):
        _known[key] = found
    return _known.get(key)


def verdict(device: int, config: str, force: bool = False) -> Verdict:
    """Returns the verdict on CUDA device ``device``: the kept one, else (or with ``force``) the one the check
    finds now, with ``config`` and the book's configuration timed, then kept.

    A cache folder that cannot be written costs a check in every process, said once.
    """
    ident, key, path = _lookup(device)
    if not force and key in _known:
        return _known[key]
    found: Verdict | None = None
    try:
        with verdicts_file.locked(path, timeout=LIMIT_S + 60):  # another first run's check: wait for it
            previous = None if force else _read(path, ident)
            found = previous or _check(ident, device, config, path.parent)
            if found is not previous:
                verdicts_file.write_json(path, found.__dict__)
    except DataError as e:  # the folder or its lock cannot be made, the file cannot be written
        say_once(f"cannot keep the cuda kernel's check in {path.parent} ({e}): checking in every run")
        if found is None:  # (else it was checked, and only keeping it failed)
            found = _check(ident, device, config, path.parent)
    _known[key] = found
    return found


def _check(ident: dict, device: int, config: str, reports: Path) -> Verdict:
    """Returns the verdict the check finds now, in a child process, with ``config`` and the book's timed."""
    say(f"checking the cuda kernel on this {ident['gpu']} (once; up to {LIMIT_S:.0f} s) ...")
    start = time.perf_counter()
    result, tail = check_in_child(device, list(dict.fromkeys([config, BOOK])))
    took = time.perf_counter() - start
    say(f"... the check {'passed' if result['passed'] else 'failed'} in {took:.1f} s")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    found = Verdict(result["passed"], ident["gpu"], today, result["failure"] or "", "", result["timings"], ident, took)
    if not found.passed:
        found.report = str(_report(reports, ident, found, tail))
    return found


def check_in_child(device: int, configs, limit: float | None = None) -> tuple[dict, str]:
    """Returns the check's result, from a child process given ``limit`` seconds, and the end of what it printed.
    A child that hangs is killed with everything it started; one that crashes is a failure that says how."""
    limit = LIMIT_S if limit is None else limit
    with verdicts_file.scratch_folder("gpunet-check-") as scratch:
        out = scratch / "result.json"
        command = [sys.executable, "-m", "gpunet.kernels.cuda.check", "--device", str(device), "--json", str(out)]
        command += [*(a for c in configs for a in ("--time", c)), "--examples", str(EXAMPLES)]
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            printed, _ = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the child and what it started (compilers, ...)
            printed, _ = child.communicate()
            return _failed(f"did not finish within {limit:.0f} s (a hang, or a very slow compilation)"), printed
        except BaseException:  # Ctrl-C reaches only the user's run (the child has a session of its own)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        tail = "\n".join(printed.splitlines()[-FAILED_TAIL:])
        if child.returncode in (0, 1) and out.is_file():
            result = verdicts_file.read_json(out)
            if isinstance(result, dict):
                return result, tail
            return _failed(f"the check's result is unreadable: {_last_line(printed)}"), tail
        if child.returncode < 0:
            name = signal.Signals(-child.returncode).name
            return _failed(f"the check's process was killed by {name}: {_last_line(printed)}"), tail
        return _failed(f"the check's process exited with status {child.returncode}: {_last_line(printed)}"), tail


def _failed(why: str) -> dict:
    return {"passed": False, "failure": why, "timings": {}}


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "it printed nothing"


def _report(where: Path, ident: dict, found: Verdict, tail: str) -> Path:
    """Returns the path of a small text file for a bug report: the GPU, the versions, the failing case and its
    numbers."""
    from ..._version import __version__

    lines = [f"gpunet {__version__}: the cuda epoch kernel failed its check on {found.date}", ""]
    lines += [f"{k}: {v}" for k, v in ident.items()]
    lines += [f"python: {sys.version.split()[0]}", "", f"failure: {found.failure}", "", "the check's last lines:", tail]
    path = where / f"cuda-check-{ident['sources_sha256'][:12]}-report.txt"
    return verdicts_file.write_report(path, "\n".join(lines) + "\n")
