"""Lint, type and packaging checks that keep the repository honest."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra)")
    return ruff


def test_ruff_finds_nothing():
    run = subprocess.run([_ruff(), "check", "gpunet", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_format_would_change_nothing():
    run = subprocess.run([_ruff(), "format", "--check", "gpunet", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr + "\n(run `ruff format gpunet tests`)"


def test_mypy_finds_nothing():
    """mypy over gpunet/ with [tool.mypy] of pyproject.toml (its cache in .mypy_cache makes a second run fast)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it comes with the test extra)")
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    errors = "\n".join(line for line in run.stdout.splitlines() if ": error:" in line or ": note:" in line)
    assert run.returncode == 0, f"mypy found type errors:\n{errors or run.stdout}\n{run.stderr}"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 1, commands
    command = re.sub(r"\s*\|\|.*$", "", commands[0])  # what follows `||` only keeps the exit status
    assert command.startswith("python3 -m venv .venv") and command.endswith("python -m pytest")
    assert command in readme


def test_the_package_ships_its_license_and_types():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, build = pyproject["project"], pyproject["build-system"]
    assert (ROOT / "gpunet" / "py.typed").is_file()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["gpunet"]
    assert project["license"] == "MIT" and "Copyright (c) 2026 gpunet developers" in (ROOT / "LICENSE").read_text()
    assert all((ROOT / name).is_file() for name in project["license-files"])
    # an SPDX expression in `license`, and `license-files`, need setuptools 77 (PEP 639)
    setuptools = next(r for r in build["requires"] if r.startswith("setuptools"))
    assert tuple(map(int, re.search(r">=\s*([\d.]+)", setuptools).group(1).split("."))) >= (77,)


def test_backend_seam_is_the_only_module_that_imports_cupy():
    importers = [p.name for p in (ROOT / "gpunet").glob("*.py") if "import cupy" in p.read_text()]
    assert importers == ["backend.py"]


@pytest.mark.parametrize(
    "pytest_status, verdict", [(0, None), (1, "FAILED with exit status 1"), (5, "collected no tests")]
)
def test_ci_passes_on_pytests_exit_status_and_says_why_it_failed(tmp_path, pytest_status, verdict):
    """.ci/run with stand-ins for python3, pip, pytest and the Docker engine: its status is pytest's, its verdict
    one line, and the engine it started is stopped, pass or fail."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    engine = tmp_path / ".ci" / "docker-engine"
    engine.write_text('#!/bin/sh\necho "$1" >> engine.calls\n[ "$1" != env ] || echo export GPUNET_DOCKER_HOST=x\n')
    engine.chmod(0o755)
    fake_python3 = f"""#!/bin/sh
mkdir -p .venv/bin
printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/pip
printf '#!/bin/sh\\necho "=== closing line of pytest ==="\\nexit {pytest_status}\\n' > .venv/bin/python
chmod +x .venv/bin/pip .venv/bin/python
"""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").write_text(fake_python3)
    (tmp_path / "bin" / "python3").chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == pytest_status, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "=== closing line of pytest ==="
    assert (tmp_path / "engine.calls").read_text().split() == ["start", "env", "stop"]
    if verdict is None:
        assert run.stderr == ""
    else:
        assert len(run.stderr.splitlines()) == 1 and verdict in run.stderr, run.stderr
