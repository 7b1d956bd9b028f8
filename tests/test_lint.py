"""Lint and packaging checks that keep the repository honest."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra)")
    run = subprocess.run([ruff, "check", "gpunet", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[-1]
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert command in readme


def test_backend_seam_is_the_only_module_that_imports_cupy():
    importers = [p.name for p in (ROOT / "gpunet").glob("*.py") if "import cupy" in p.read_text()]
    assert importers == ["backend.py"]
