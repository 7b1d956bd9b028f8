"""The suite's warning policy: errors in gpunet's code and the tests, whatever pytest plugins are installed."""

import os
import re
import subprocess
import sys

from helpers import ROOT

PLUGIN = """
import warnings


def pytest_configure(config):
    warnings.warn("a third-party plugin's start-up warning (as pytest-benchmark's under pytest-xdist)", UserWarning)
"""

TESTS = """
import warnings


def warn_from(module):
    exec("import warnings; warnings.warn('attributed to ' + __name__, UserWarning)", {"__name__": module})


def test_gpunet_module():
    warn_from("gpunet.maths")


def test_compiled_gpunet_function():  # numba reports against the jitted function's file
    warnings.warn_explicit("compiled", UserWarning, "/any/checkout/gpunet/kernels/numba_cpu.py", 1)


def test_test_module():
    warnings.warn("from a test", UserWarning)


def test_third_party_library():
    warn_from("somelib.core")


def test_third_party_file_in_a_checkout_named_gpunet():
    warnings.warn_explicit("theirs", UserWarning, "/x/gpunet/.venv/lib/python3.11/site-packages/lib/m.py", 1)


class Leaky:
    def __del__(self):
        raise RuntimeError("in __del__, as a leaked resource's warning is")


def test_unraisable_exception():
    Leaky()
"""


def test_plugin_warnings_are_not_errors_and_gpunets_are(tmp_path):
    """The project's own configuration, in a fresh pytest with a plugin that warns while pytest starts."""
    (tmp_path / "noisy_plugin.py").write_text(PLUGIN)
    (tmp_path / "test_policy.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONWARNINGS"))}
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONPATH=str(tmp_path))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "noisy_plugin",
            "-p",
            "no:cacheprovider",
            "-rA",
            "test_policy.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert "INTERNALERROR" not in output and run.returncode == 1, output
    outcomes = {
        name: status for status, name in re.findall(r"^(PASSED|FAILED|ERROR) test_policy\.py::(\w+)", output, re.M)
    }
    assert outcomes == {
        "test_gpunet_module": "FAILED",
        "test_compiled_gpunet_function": "FAILED",
        "test_test_module": "FAILED",
        "test_third_party_library": "PASSED",
        "test_third_party_file_in_a_checkout_named_gpunet": "PASSED",
        "test_unraisable_exception": "FAILED",
    }, output
    assert "a third-party plugin's start-up warning" in output  # shown, not hidden
