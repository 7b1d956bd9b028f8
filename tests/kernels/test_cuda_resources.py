"""The CUDA kernels under both NVRTCs a user can have (issue 27 items 5 and 7), without a GPU: the NVRTC of the test
extra (``gpunet[cuda13]``'s, pinned in pyproject.toml) and ``gpunet[cuda12]``'s, in a second environment with real
CuPy (tests/kernels/cuda12-env.txt, made here once in .venv-cuda12 and reused while the pins are the same).

- every instantiation compiles for sm_75 ... sm_120 where the NVRTC supports the architecture, within a spill budget,
  and with none in the instantiations the book's configurations choose on the GPUs of the device table;
- the resource table kept in docs/gpu.md is what tests/kernels/cuda_resources.py prints;
- real CuPy's own compile path reaches NVRTC and maps every name expression, and the calls the launcher and the
  scorer make bind to CuPy's signatures (tests/kernels/real_cupy.py, run in the second environment).
"""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers import GPUS, ROOT

from gpunet.kernels.cuda import launcher

sys.path.insert(0, str(Path(__file__).parent))
import cuda_resources  # noqa: E402 - the command this test checks, beside it

pytest.importorskip("cuda.bindings.nvrtc", reason="needs cuda-bindings and nvidia-cuda-nvrtc (test extra)")

REQUIREMENTS = Path(__file__).with_name("cuda12-env.txt")
ENV12 = ROOT / ".venv-cuda12"
SPILL_BUDGET = 128  # bytes of local memory (stack frame) and of spill stores a thread may use, in any instantiation
BOOK = [((784, 30, 10), dtype) for dtype in ("float32", "float64")]  # chapter 1's network, mini-batch 10
# Spills that today's kernel has in what the book's configurations choose (NVRTC, GPU, dtype): held as known and
# strict, so that the day they go (or others come) this test says so.
# Today all are a member's parameters in global memory (the 64 and 99 KB GPUs).
KNOWN_SPILLS = {
    ("13.5", "T4", "float32"),
    ("12.9", "RTX 5090", "float64"),
    ("13.5", "RTX 5090", "float32"),
    ("13.5", "RTX 5090", "float64"),
}


def env12_python() -> Path:
    """The second environment's interpreter, made (or remade when the pins changed) with pip; skips if pip fails."""
    python, marker = ENV12 / "bin" / "python", ENV12 / "requirements.txt"
    pins = REQUIREMENTS.read_text(encoding="utf-8")
    if python.exists() and marker.exists() and marker.read_text(encoding="utf-8") == pins:
        return python
    venv.create(ENV12, clear=True, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS), "numpy"]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode:
        pytest.skip(f"cannot make {ENV12.name} for NVRTC 12: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    marker.write_text(pins, encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def specs():
    return cuda_resources.kernels()


@pytest.fixture(scope="module")
def python12():
    return env12_python()


@pytest.fixture(scope="module")
def rows(specs, python12):
    """Every instantiation of both kernels on every architecture, under NVRTC 12 (second environment) and 13."""
    return cuda_resources.rows_under(str(python12), specs) + cuda_resources.rows(specs)


def test_both_nvrtcs_compile_every_instantiation_for_every_architecture(rows, specs):
    names = {n for k in specs for n in k["names"]}
    versions = {r["nvrtc"].split(".")[0] for r in rows}
    assert versions == {"12", "13"}, versions
    for version in versions:
        for arch in cuda_resources.ARCHS:  # both NVRTCs support sm_75 ... sm_120
            assert {r["name"] for r in rows if r["nvrtc"].startswith(version) and r["arch"] == arch} == names


def test_every_instantiation_within_the_spill_budget(rows):
    for r in rows:
        assert r["stack"] <= SPILL_BUDGET and r["stores"] <= SPILL_BUDGET, r
        assert r["registers"] * (1024 if "sgd_epoch" in r["name"] else 256) <= 65536, r


@pytest.mark.parametrize("gpu", GPUS)
def test_no_spills_where_the_book_runs(rows, gpu):
    """What the launcher's plan chooses for the book's network on each GPU of the table, under both NVRTCs."""
    arch, optin, _, _, static = GPUS[gpu]
    found = set()
    for sizes, dtype in BOOK:
        name = launcher.plan(sizes, 4 if dtype == "float32" else 8, 10, optin - static).name(dtype)
        for r in rows:
            if r["arch"] == arch and r["name"] == name and (r["stores"] or r["loads"] or r["stack"]):
                found.add((r["nvrtc"], gpu, dtype))
    assert found == {k for k in KNOWN_SPILLS if k[1] == gpu}, f"spills where the book runs on the {gpu}: {found}"


def test_docs_keep_the_resource_table(rows):
    """docs/gpu.md holds the table tests/kernels/cuda_resources.py prints (run it as the docs say to renew it)."""
    text = (ROOT / "docs" / "gpu.md").read_text(encoding="utf-8")
    kept = text.split("<!-- resources -->\n")[1].split("<!-- /resources -->")[0]
    assert kept == cuda_resources.table(rows), "docs/gpu.md's resource table is stale: rerun the command above it"


def test_static_shared_memory_is_read_from_the_cubin():
    """The ELF reader finds a kernel's static __shared__ array, which -Xptxas -v does not count in this table."""
    spec = {"kernel": "probe", "options": ["--std=c++17"], "names": ["probe"]}
    spec["source"] = 'extern "C" __global__ void probe(float* out) { __shared__ float s[300]; s[threadIdx.x] = 1;'
    spec["source"] += " __syncthreads(); out[threadIdx.x] = s[299 - threadIdx.x]; }"
    [row] = cuda_resources.measure(spec, 80)
    assert row["static_shared"] == 1200 and row["lowered"] == "probe"


@pytest.fixture(scope="module")
def real_cupy(specs, python12):
    done = subprocess.run(
        [str(python12), str(Path(__file__).with_name("real_cupy.py"))],
        input=json.dumps({"specs": specs}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_real_cupy_accepts_the_launchers_calls_and_refuses_the_others(real_cupy):
    refused = {"RawModule(code, options) positional"}
    calls = real_cupy["calls"]
    assert {call for call, why in calls.items() if why is not None} == refused, calls
    attributes = real_cupy["attributes"]
    assert attributes["RawModule declares options a tuple"], "a list of options: TypeError in real CuPy"
    assert (
        attributes["max_dynamic_shared_size_bytes settable"] and attributes["preferred_shared_memory_carveout settable"]
    )
    assert attributes["cudaDevAttrKernelExecTimeout"] == 17 and attributes["nvrtc.getVersion()"][0] == 12
    assert attributes["is_available()"] is False  # no driver here: the compile path below is all CuPy can do


def test_real_cupy_compile_path_reaches_nvrtc_and_maps_every_name(real_cupy, rows, specs):
    for spec in specs:
        got = real_cupy["compiled"].get("skipped") or real_cupy["compiled"][spec["kernel"]]
        if isinstance(got, str):
            pytest.skip(got)
        assert got["options"] is not None, f"CuPy never reached NVRTC: {got['ended']}"
        ours = [o for o in got["options"] if not o.startswith("-I")]
        assert ours == [*spec["options"], "-ftz=true"], got["options"]  # one --std, no duplicates
        direct = {r["name"]: r["lowered"] for r in rows if r["nvrtc"].startswith("12") and r["arch"] == 90}
        assert got["lowered"] == {n: direct[n] for n in spec["names"]}
        assert "Driver" in got["ended"] or "driver" in got["ended"], got["ended"]  # it stopped at loading the cubin
