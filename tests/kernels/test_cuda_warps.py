"""The emulator's warp intrinsics (tests/cuda_emu/cuda_emu.h), on the test kernels of tests/cuda_emu/warps.cu:
a warp reduction by shuffles and a ballot/popc prefix count give NumPy's answers under every build of the
emulator; a dropped shuffle step, a wrong lane mask, a lane that does not take part and one waiting at
__syncthreads() each fail; and the same kernels compile with NVRTC for sm_90."""

import shutil
import subprocess

import numpy as np
import pytest
from conftest import BUILDS, EMU

SOURCE = EMU / "warps.cu"
KINDS = [kind for kind in BUILDS if kind != "fma"]  # plain and the sanitizers (UBSan too, where it is built)
# name: (old, new, how it shows: the emulator's message or NumPy's).
MUTANTS = {
    "a dropped shuffle step": ("delta = 16; delta > 0", "delta = 8; delta > 0", "Arrays are not equal"),
    "a wrong lane mask": ("__shfl_down_sync(0xffffffffu", "__shfl_down_sync(0x0000ffffu", "a mask that leaves it out"),
    "a lane that does not take part": (
        "  float s = x[threadIdx.x];\n  for (int delta",
        "  if (threadIdx.x % 32 == 31) return;\n  float s = x[threadIdx.x];\n  for (int delta",
        "a lane of its mask that never comes",
    ),
    "a lane at __syncthreads() instead": (
        "  float s = x[threadIdx.x];\n  for (int delta",
        "  if (threadIdx.x % 32 == 31) __syncthreads();\n  float s = x[threadIdx.x];\n  for (int delta",
        "a lane of its mask that never comes",
    ),
    "a wrong mask of the lanes before": ("(1u << lane) - 1;", "(1u << lane);", "Arrays are not equal"),
}


@pytest.fixture(scope="module")
def warps(tmp_path_factory):
    """(build, source) -> a function running one kernel of that source on the given inputs."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("needs g++ (C++20) to run the CUDA test kernels on the CPU")
    folder, built = tmp_path_factory.mktemp("warps"), {}

    def build(kind: str, source: str):
        if (kind, source) not in built:
            sub = folder / f"{kind}-{len(built)}"
            sub.mkdir()
            (sub / "warps.cu").write_text(source)  # beside its main: a quoted include looks there first
            shutil.copy(EMU / "warps_main.cpp", sub)
            out = sub / "warps"
            cmd = [cxx, "-std=c++20", "-pthread", *BUILDS[kind], f"-I{sub}", f"-I{EMU}", "-Wall", "-o", str(out)]
            result = subprocess.run([*cmd, str(sub / "warps_main.cpp")], capture_output=True, text=True)
            if result.returncode and kind != "plain" and "sanitize" in result.stderr:
                pytest.skip(f"g++ cannot build with {BUILDS[kind]}: {result.stderr.strip()[:300]}")
            assert result.returncode == 0, result.stderr
            built[kind, source] = out

        def run(kernel: str, inputs):
            result = subprocess.run(
                [str(built[kind, source]), kernel, str(len(inputs))],
                input=" ".join(str(int(v)) for v in inputs),
                capture_output=True,
                text=True,
                timeout=120,
            )
            return (
                result.returncode,
                [np.array(line.split(), dtype=float) for line in result.stdout.splitlines()],
                result.stderr,
            )

        return run

    return build


def inputs(threads=96):
    return np.random.default_rng(28).integers(-50, 50, threads)


def check_sum(run):
    x = inputs()
    rc, out, err = run("warp_sum", x)
    assert rc == 0, err
    np.testing.assert_array_equal(out[0], x.reshape(-1, 32).sum(axis=1))
    rc, out, err = run("warp_sum_all", x)
    assert rc == 0, err
    np.testing.assert_array_equal(out[0], np.repeat(x.reshape(-1, 32).sum(axis=1), 32))


def check_prefix(run):
    flags = (inputs() % 3 == 0).astype(int)
    rc, out, err = run("prefix_count", flags)
    assert rc == 0, err
    per_warp = flags.reshape(-1, 32)
    slots = np.where(per_warp, np.cumsum(per_warp, axis=1) - per_warp, -1)  # exclusive count of flagged lanes before
    np.testing.assert_array_equal(out[0], slots.ravel())
    np.testing.assert_array_equal(out[1], per_warp.sum(axis=1))
    np.testing.assert_array_equal(out[2], np.repeat(per_warp[:, 0], 32))


@pytest.mark.parametrize("kind", KINDS)
def test_warp_kernels_give_numpys_answers(warps, kind):
    run = warps(kind, SOURCE.read_text())
    check_sum(run)
    check_prefix(run)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_mutated_warp_kernel_fails(warps, kind, mutant):
    old, new, shows = MUTANTS[mutant]
    text = SOURCE.read_text()
    assert text.count(old) == 1, f"the mutation {mutant!r} no longer applies"
    run = warps(kind, text.replace(old, new))
    with pytest.raises(AssertionError, match=shows):
        check_sum(run)
        check_prefix(run)


def test_warp_kernels_compile_with_nvrtc_for_sm_90():
    from test_cuda_kernel import nvrtc_compile

    names = ["warps::warp_sum", "warps::warp_sum_all", "warps::prefix_count"]
    options = ("--std=c++17", "--gpu-architecture=sm_90", "--device-as-default-execution-space", "-ftz=true")
    ok, log, lowered, _ = nvrtc_compile(SOURCE.read_bytes(), names, options)
    assert ok, log
    assert set(lowered) == set(names)
