"""numba in a hostile environment: a NUMBA_* variable it cannot read (one note: numba keeps its default), and an
address space too small for the threads of the second OpenBLAS it loads (SciPy's)."""

import os
import resource
import subprocess
import sys

import pytest
from helpers import ROOT, write_mnist_like


@pytest.mark.parametrize("variable,value", [("NUMBA_NUM_THREADS", "abc"), ("NUMBA_OPT", "fast")])
def test_a_numba_variable_it_cannot_read_is_one_note(tmp_path, variable, value):
    pytest.importorskip("numba")
    write_mnist_like(tmp_path / "d", 30, 10, rows=4, cols=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT), variable: value}  # numba reads it once, when first imported
    args = ["train", "--device", "cpu", "--data-dir", tmp_path / "d", "--sizes", "16,10", "--epochs", "1",
            "--validation-size", "0", "--kernel", "numba"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "gpunet", *args], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith(f"gpunet: numba ignores {variable}={value!r} and uses its default ("), run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr  # no RuntimeWarning, no traceback of numba's parse


def _capped():
    # threads of 120 MB stacks in 600 MB of address space: NumPy's BLAS thread starts, one more cannot
    resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))
    resource.setrlimit(resource.RLIMIT_STACK, (120 << 20, 120 << 20))


def test_a_capped_address_space_trains_where_scipys_blas_could_not_start_its_threads(tmp_path):
    pytest.importorskip("numba")
    pytest.importorskip("scipy")  # what numba loads at its first compilation: a second OpenBLAS
    write_mnist_like(tmp_path / "d", 30, 10, rows=4, cols=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENBLAS_NUM_THREADS", None)
    args = ["train", "--device", "cpu", "--data-dir", tmp_path / "d", "--sizes", "16,10", "--epochs", "1",
            "--validation-size", "0", "--kernel", "numba"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "gpunet", *args], env=env, capture_output=True, text=True,
                         preexec_fn=_capped, timeout=300)  # fmt: skip
    # OpenBLAS that cannot start a thread sends its process SIGINT: "gpunet: interrupted", exit 130
    assert run.returncode == 0 and run.stderr == "", run.stderr
