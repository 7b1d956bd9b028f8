"""A NUMBA_* variable numba cannot read: numba keeps its default, and gpunet says so in one note, no traceback."""

import os
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
