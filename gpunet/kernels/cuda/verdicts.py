"""What the CUDA kernel's check found on this machine, kept in the user's cache folder (as FFTW keeps its wisdom).

The check (:mod:`gpunet.kernels.cuda.check`) runs in a child process with a time limit, the first time a CUDA run
would use the kernel. Its verdict and the seconds it measured are kept in ``<user cache>/gpunet/cuda-check/``, one
JSON file per key: the GPU's name and compute capability, the driver, the CUDA runtime, CuPy's version and the
sha256 of the kernel's sources, its launcher and the check itself. Any change of these is another key, so the check
runs again. Files are written atomically under a file lock: two first runs at once check once, the second waits.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import check as cuda_check
from . import common as cuda_common
from . import launcher as cuda
from . import scorer as cuda_score

LIMIT_S = 120.0  # the check's time limit, compilation included (expected: well under 20 s)
FAILED_TAIL = 40  # lines of the child's output kept in a report
EXAMPLES = cuda_check.EPOCH  # examples of the kernel's timed epoch (the CPU emulation in the tests takes fewer)


def folder() -> Path:
    """Where verdicts are kept: ``~/.cache/gpunet/cuda-check`` on Linux."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("gpunet")) / "cuda-check"


def sources() -> list[Path]:
    """The files whose change changes the verdict: the kernels' sources, their launcher, the check."""
    launchers = (cuda_common, cuda, cuda_score, cuda_check)
    return [*sorted(cuda.SOURCE.parent.glob("*.cu")), *(Path(str(m.__file__)) for m in launchers)]


def identity(device: int) -> dict:
    """Everything the verdict on CUDA device ``device`` depends on."""
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(device)
    name = properties["name"]
    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{properties['major']}.{properties['minor']}",
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__,
        "sources_sha256": digest.hexdigest(),
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
        """The measured s/epoch of ``config``, else of the book's configuration, else None."""
        return self.timings.get(config) or self.timings.get(cuda_check.config_key(*cuda_check.BOOK))

    def describe(self, config: str | None = None) -> str:
        """``checked on this NVIDIA H100 80GB HBM3 on 2026-12-01: 0.041 s/epoch here, CPU 0.15``, or the failure."""
        if not self.passed:
            return f"failed its check on this {self.gpu} on {self.date}: {self.failure}; report {self.report}"
        text = f"checked on this {self.gpu} on {self.date}"
        measured = self.seconds(config or "")
        if measured:
            sizes, batch, _ = cuda_check.BOOK
            which = "" if config in self.timings else f" for {list(sizes)} mini-batch {batch}"
            text += f": {measured['cuda']:.2g} s/epoch here{which}, CPU {measured['cpu']:.2g}"
        return text


_known: dict[str, Verdict] = {}  # this process's verdicts, by key
_said: set[str] = set()  # one-line notes already given in this process


def say(text: str, end: str = "\n") -> None:
    print(f"gpunet: {text}", end=end, file=sys.stderr, flush=True)


def say_once(text: str) -> None:
    if text not in _said:
        _said.add(text)
        say(text)


def verdict(device: int, config: str, run: bool = True, timing: bool = False, force: bool = False) -> Verdict | None:
    """The verdict on CUDA device ``device``: kept, or checked now (``run``), with ``config`` timed if ``timing``.

    ``run=False`` only reads what is kept (None when nothing is). ``force`` checks again whatever is kept.
    A cache folder that cannot be written costs a check in every process, said once.
    """
    ident = identity(device)
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    known = None if force else _known.get(key)
    if known is not None and not _wanted(known, config, timing):
        return known
    path = folder() / f"{key}.json"
    found: Verdict | None = None
    try:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock", timeout=3 * LIMIT_S + 60):  # another first run's check: wait for it
            kept = known or (None if force else _read(path, ident))
            found = _complete(kept, ident, device, config, timing, path.parent) if run else kept
            if found is not None and found is not kept:
                _write(path, found)
    except OSError as e:  # the folder or its lock cannot be made, the file cannot be written
        if not run:
            return None
        say_once(f"cannot keep the cuda kernel's check in {path.parent} ({e.strerror or e}): checking in every run")
        if found is None:  # (else it was checked, and only keeping it failed)
            found = _complete(known, ident, device, config, timing, Path(tempfile.gettempdir()))
    if found is not None:
        _known[key] = found
    return found


def _wanted(kept: Verdict, config: str, timing: bool) -> bool:
    """Whether ``kept`` lacks what is asked: the timing of ``config``, on a GPU where the check passed."""
    return timing and kept.passed and config not in kept.timings


def _read(path: Path, ident: dict) -> Verdict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        found = Verdict(**record)
    except (OSError, ValueError, TypeError):
        return None  # none yet, or unreadable: check again
    return found if found.identity == ident else None


def _write(path: Path, found: Verdict) -> None:
    from ...io.fs import atomic_write

    text = json.dumps(found.__dict__, indent=1).encode()
    try:
        with atomic_write(path) as f:
            f.write(text)
    except Exception as e:  # noqa: BLE001 - DataError: kept for this process only
        raise OSError(str(e)) from None


def _complete(kept, ident, device, config, timing, reports: Path) -> Verdict:
    """``kept`` if it has what is asked, else the check's answer (the cases when nothing is kept; else a timing)."""
    if kept is not None and not _wanted(kept, config, timing):
        return kept
    configs = [config] if kept is not None else list(dict.fromkeys([config, cuda_check.config_key(*cuda_check.BOOK)]))
    what = "timing the cuda kernel" if kept is not None else "checking the cuda kernel"
    say(f"{what} on this {ident['gpu']} (once; up to {LIMIT_S:.0f} s) ...", end="")
    start = time.perf_counter()
    result, tail = run_child(device, configs, cases=kept is None)
    took = time.perf_counter() - start
    print(f" {'done' if result['passed'] else 'failed'} in {took:.1f} s", file=sys.stderr, flush=True)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    if kept is not None:
        if result["passed"]:
            return Verdict(**{**kept.__dict__, "timings": {**kept.timings, **result["timings"]}})
        kept = None  # the kernel failed where it had passed: the failure is the verdict
    found = Verdict(result["passed"], ident["gpu"], today, result["failure"] or "", "", result["timings"], ident, took)
    if not found.passed:
        found.report = str(_report(reports, ident, found, tail))
    return found


def run_child(device: int, configs, cases: bool = True, limit: float | None = None) -> tuple[dict, str]:
    """Run the check in a child process within ``limit`` seconds: its result, and the end of what it printed.
    A child that hangs is killed with everything it started; one that crashes is a failure that says how."""
    limit = LIMIT_S if limit is None else limit
    with tempfile.TemporaryDirectory(prefix="gpunet-check-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "gpunet.kernels.cuda.check", "--device", str(device), "--json", str(out)]
        command += [a for c in configs for a in ("--time", c)] + ([] if cases else ["--no-cases"])
        command += ["--examples", str(EXAMPLES)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 errors="replace", start_new_session=True)  # fmt: skip
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
            try:
                return json.loads(out.read_text(encoding="utf-8")), tail
            except ValueError:
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
    """A small text file for a bug report: the GPU, the versions, the failing case and its numbers."""
    from ..._version import __version__

    lines = [f"gpunet {__version__}: the cuda epoch kernel failed its check on {found.date}", ""]
    lines += [f"{k}: {v}" for k, v in ident.items()]
    lines += [f"python: {sys.version.split()[0]}", "", f"failure: {found.failure}", "", "the check's last lines:", tail]
    path = where / f"cuda-check-{ident['sources_sha256'][:12]}-report.txt"
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError:
        fd, name = tempfile.mkstemp(prefix="gpunet-cuda-check-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        path = Path(name)
    return path
