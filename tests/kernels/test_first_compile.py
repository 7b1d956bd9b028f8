"""The first run on a machine (issue 30, items 4 and 12): numba compiling the CPU kernel is said once, in one line, and
timed; a run that finds the compiled code in numba's cache says nothing; the CUDA check starts without a warning."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from gpunet.kernels import numba_cpu
    numba_cpu.Compiling.listen()
    sys.path.insert(0, sys.argv[1])
    import cached
    cached.f(1.0), cached.g(2.0)  # two functions: one note
    print("seconds", numba_cpu.compile_seconds() > 0)
    """
)


def test_a_compile_is_said_once_and_timed_and_a_cache_hit_is_silent(tmp_path):
    (tmp_path / "cached.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n\n"
        "@numba.njit(cache=True)\ndef g(x):\n    return f(x) * 2\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env)
        for _ in range(2)
    ]
    first, second = runs
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stderr.count("compiling the CPU kernel for this machine: once") == 1, first.stderr
    assert "seconds True" in first.stdout
    assert "compiling" not in second.stderr and "seconds False" in second.stdout  # numba's cache had both


def test_the_cuda_check_module_runs_without_runpys_warning():
    """``python -m gpunet.kernels.cuda.check`` (issue 30, item 12: the old ``cuda_check`` began with runpy's
    'found in sys.modules' RuntimeWarning): nothing imports the module before runpy runs it."""
    run = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "gpunet.kernels.cuda.check", "--help"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0 and "RuntimeWarning" not in run.stderr and run.stdout.startswith("usage:"), run.stderr
