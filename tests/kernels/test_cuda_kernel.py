"""The CUDA epoch kernel (gpunet/kernels/cuda.py), checked three ways:

1. without a GPU, NVRTC compiles every instantiation the launcher can choose to an sm_90 cubin, with CuPy's
   options, within the GPU's registers and shared memory and the spill budget (every architecture and both NVRTCs:
   test_cuda_resources.py);
2. without a GPU, the real .cu runs on the CPU (g++ and tests/cuda_emu/cuda_emu.h: threads, barriers, shared
   memory), also under ThreadSanitizer and AddressSanitizer, and gives the portable path's parameters;
3. on a GPU (``pytest -m gpu``), the launched kernel gives the portable path's parameters and accuracy (and its
   check on the GPU, the one gpunet runs before it uses the kernel, passes: tests/test_cuda_check.py).
"""

import inspect
import os
import re
import sys
import textwrap
from collections import defaultdict

import numpy as np
import pytest
from helpers import GPUS

from gpunet.backend import get_backend
from gpunet.kernels.cuda import launcher as cuda
from gpunet.kernels.cuda.check import CHAPTER_3_ETAS, TOLERANCE, portable, problem

H100_SHARED = 232448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90 (227 KiB)
# (sizes, mini-batch, steps) of the GPU tests (section 3), also run on the CPU at the GPU's block size (section 2).
GPU_CASES = [
    ([784, 30, 10], 10, 1),  # parameters in shared memory (f32 and f64)
    ([784, 30, 10], 10, 10),
    ([784, 100, 10], 10, 10),  # f32 parameters in global memory
    ([784, 30, 10], 7, 10),  # odd mini-batch
    ([30, 20, 15, 10], 3, 10),  # three layers
    ([784, 30, 10], 100, 2),  # workspace in global memory for f64
]


# ---- 1. NVRTC, no GPU needed -----------------------------------------------------------------------------------


def nvrtc_compile(source: bytes, names, options):
    """Compile ``source`` with every name expression; return (ok, log, lowered names, PTX or "")."""
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="needs cuda-bindings and nvidia-cuda-nvrtc (test extra)")

    def check(result):
        assert result[0] == nvrtc.nvrtcResult.NVRTC_SUCCESS, result
        return result[1] if len(result) > 1 else None

    prog = check(nvrtc.nvrtcCreateProgram(source, b"sgd_epoch.cu", 0, [], []))
    try:
        for name in names:
            check(nvrtc.nvrtcAddNameExpression(prog, name.encode()))
        opts = [o.encode() for o in options]
        ok = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0] == nvrtc.nvrtcResult.NVRTC_SUCCESS
        log = bytes(check(nvrtc.nvrtcGetProgramLogSize(prog)))  # new bytes: b" " * 1 is the shared b" "
        check(nvrtc.nvrtcGetProgramLog(prog, log))
        lowered = {name: check(nvrtc.nvrtcGetLoweredName(prog, name.encode())).decode() for name in names} if ok else {}
        ptx = b""
        if ok and any(o.startswith("--gpu-architecture=compute_") for o in options):
            ptx = bytes(check(nvrtc.nvrtcGetPTXSize(prog)))
            check(nvrtc.nvrtcGetPTX(prog, ptx))
        return ok, log.decode(errors="replace").rstrip("\x00 "), lowered, ptx.decode().rstrip("\x00")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def ptxas_usage(log: str) -> dict:
    """Per entry function: registers, spill bytes, stack and static shared memory, from ``-Xptxas -v``."""
    usage, entry = {}, None
    for line in log.splitlines():
        if m := re.search(r"Compiling entry function '(\w+)'", line):
            entry = usage.setdefault(m.group(1), {"registers": 0, "spills": 0, "stack": 0, "smem": 0})
        elif entry is not None and (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+)", line)):
            entry["stack"], entry["spills"] = int(m.group(1)), int(m.group(2)) + int(m.group(3))
        elif entry is not None and (m := re.search(r"Used (\d+) registers", line)):
            entry["registers"] = int(m.group(1))
            if s := re.search(r"(\d+) bytes smem", line):
                entry["smem"] = int(s.group(1))
    return usage


@pytest.fixture(scope="module")
def compiled():
    # CuPy's RawModule passes these besides ours (cupy/cuda/compiler.py); sm_90 makes NVRTC run ptxas too.
    options = (*cuda.OPTIONS, "--gpu-architecture=sm_90", "--device-as-default-execution-space", "-ftz=true")
    return nvrtc_compile(cuda.SOURCE.read_bytes(), cuda.INSTANTIATIONS, (*options, "-Xptxas=-v"))


def test_every_instantiation_compiles_for_sm_90(compiled):
    ok, log, lowered, _ = compiled
    assert ok, f"NVRTC failed to compile {cuda.SOURCE.name}:\n{log}"
    assert set(lowered) == set(cuda.INSTANTIATIONS) and len(cuda.INSTANTIATIONS) == 8


def test_instantiations_fit_the_gpu(compiled):
    ok, log, lowered, _ = compiled
    assert ok, log
    usage = ptxas_usage(log)
    for name, mangled in lowered.items():
        u = usage[mangled]
        # Local memory within test_cuda_resources.py's spill budget (which checks every architecture, both NVRTCs).
        assert u["stack"] <= 128, f"{name} spills registers: {u}\n{log}"
        assert u["registers"] * cuda.THREADS <= 65536, f"{name}: {u['registers']} registers x {cuda.THREADS} threads"
        assert u["smem"] == 0, f"{name} has static shared memory the plan does not count: {u}"


def test_ptxas_usage_reads_spills_and_shared_memory():
    """On a log as ptxas writes it (the first entry: an early version of this kernel, plus 16 bytes of smem)."""
    log = """ptxas info    : Compiling entry function '_ZN6gpunet9sgd_epochIdLb1ELb0EE' for 'sm_90'
ptxas info    : Function properties for _ZN6gpunet9sgd_epochIdLb1ELb0EE
ptxas         .     32 bytes stack frame, 40 bytes spill stores, 92 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 32 bytes cumulative stack size, 16 bytes smem
ptxas info    : Compiling entry function '_Z5other' for 'sm_90'
ptxas info    : Function properties for _Z5other
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers"""
    assert ptxas_usage(log) == {
        "_ZN6gpunet9sgd_epochIdLb1ELb0EE": {"registers": 40, "spills": 132, "stack": 32, "smem": 16},
        "_Z5other": {"registers": 64, "spills": 0, "stack": 0, "smem": 0},
    }


def test_a_broken_kernel_fails_with_the_compiler_log():
    broken = cuda.SOURCE.read_bytes().replace(b"__syncthreads();", b"__syncthreads()", 1)
    ok, log, _, _ = nvrtc_compile(broken, cuda.INSTANTIATIONS[:1], (*cuda.OPTIONS, "--gpu-architecture=sm_90"))
    assert not ok and "error" in log


# The kernel's pointer parameters, by position: to memory it writes (params, scratch), and to memory it never writes
# (x, y, order, eta, decay, sizes: const __restrict__); first_scale (10) is written and read once a launch.
WRITTEN, READ_ONLY = {0, 2, 10}, {4, 5, 6, 8, 9, 11}
PTX_OPTIONS = (*cuda.OPTIONS, "--gpu-architecture=compute_90", "--device-as-default-execution-space", "-ftz=true")


def noncoherent_loads(ptx: str) -> dict:
    """Per entry function, the positions of the kernel parameters whose memory it reads with ld.global.nc (the
    read-only data cache, which __ldg and const __restrict__ pointers allow). A register's roots are the parameters
    its value is computed from, to a fixed point around loops; a loaded value is data, not a pointer."""
    found = {}
    for entry in re.split(r"\.entry ", ptx)[1:]:
        name, body = entry.split("(", 1)
        roots: dict = defaultdict(set)
        steps = [
            m.groups()
            for line in body.splitlines()
            if (m := re.match(r"\s*(?:@!?%\w+\s+)?([a-z][\w.]*)\s+(%\w+),\s*(.*);", line))
        ]
        changed = True
        while changed:
            changed = False
            for op, dst, rest in steps:
                if op.startswith("ld.param"):
                    new = {int(p.group(1))} if (p := re.search(r"_param_(\d+)\]", rest)) else set()
                elif op.startswith(("ld.", "setp")):
                    continue
                else:
                    new = set().union(*(roots[r] for r in re.findall(r"%\w+", rest)))
                if not new <= roots[dst]:
                    roots[dst] |= new
                    changed = True
        loads = re.findall(r"ld\.global\.nc\.\w+\s+%\w+, \[(%\w+)", body)
        found[name.strip()] = set().union(*(roots[r] for r in loads))
    return found


def test_only_memory_the_kernel_never_writes_is_read_through_the_read_only_cache():
    """ld.global.nc may return stale data for memory written during the kernel (parameters in global memory,
    the workspace in scratch): the CPU emulation cannot see that, so read it off the PTX of every instantiation."""
    ok, log, lowered, ptx = nvrtc_compile(cuda.SOURCE.read_bytes(), cuda.INSTANTIATIONS, PTX_OPTIONS)
    assert ok, log
    loads = noncoherent_loads(ptx)
    for name, mangled in lowered.items():
        assert loads[mangled] & READ_ONLY, f"{name}: no .nc loads of its inputs seen; is the PTX read right?"
        assert not loads[mangled] & WRITTEN, f"{name} reads memory it writes through .nc: {loads[mangled] & WRITTEN}"


def test_noncoherent_loads_of_written_memory_are_found():
    """The check above can fail: __ldg on the parameters (written back at the end of the kernel) is caught."""
    broken = cuda.SOURCE.read_bytes().replace(b"p[t] = global_params[t];", b"p[t] = __ldg(&global_params[t]);", 1)
    ok, log, lowered, ptx = nvrtc_compile(broken, cuda.INSTANTIATIONS[:1], PTX_OPTIONS)
    assert ok, log
    assert noncoherent_loads(ptx)[lowered[cuda.INSTANTIATIONS[0]]] & WRITTEN == {0}


# ---- memory plans ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, dtype, batch, where",
    [
        ([784, 30, 10], "float32", 10, (True, True)),  # the book's network: everything in shared memory
        ([784, 30, 10], "float64", 10, (True, False)),  # 190 KB of parameters stay; the workspace goes
        ([784, 30, 10], "float32", 100, (True, False)),
        ([784, 100, 10], "float32", 10, (False, True)),  # 318 KB of parameters: global memory (L2)
        ([784, 100, 10], "float64", 1000, (False, False)),
    ],
)
def test_plan_puts_parameters_in_shared_memory_where_they_fit(sizes, dtype, batch, where):
    p = cuda.plan(sizes, np.dtype(dtype).itemsize, batch, H100_SHARED)
    assert (p.params_shared, p.work_shared) == where and p.shared_bytes <= H100_SHARED
    assert p.param_count == sum(n * m + n for m, n in zip(sizes[:-1], sizes[1:]))
    assert p.name(dtype) in cuda.INSTANTIATIONS


def test_unsupported_says_why():
    cpu = get_backend("cpu")
    assert "--device cuda" in cuda.CudaEpoch.unsupported(cpu, [784, 30, 10], "float32", 10)
    fake_cuda = type("B", (), {"name": "cuda:0"})()
    assert cuda.CudaEpoch.unsupported(fake_cuda, [784, 30, 10], "float32", 10) is None
    assert "float16" in cuda.CudaEpoch.unsupported(fake_cuda, [784, 30, 10], "float16", 10)
    assert "32-bit" in cuda.CudaEpoch.unsupported(fake_cuda, [50_000, 50_000, 10], "float32", 10)
    assert cuda.CudaEpoch.unsupported(fake_cuda, [2**27, 1], "float64", 1) is None
    assert "32-bit" in cuda.CudaEpoch.unsupported(fake_cuda, [2**28, 1], "float64", 1)  # its row's bytes overflow


@pytest.mark.parametrize("mode, words", [("missing", "pip install"), ("no-driver", "driver")])
def test_unusable_without_cupy_or_driver_gives_a_hint(monkeypatch, fresh_detection, mode, words):
    import fake_cupy

    fake_cupy.install(monkeypatch, mode)
    assert words in cuda.CudaEpoch.unusable()


# ---- 2. the kernel's logic on the CPU, through g++ ---------------------------------------------------------------


def flat(weights, biases):
    """Every member's parameters in one row each (N, P), on the host."""
    host = lambda a: a.get() if hasattr(a, "get") else np.asarray(a)
    return np.concatenate([host(a).reshape(len(host(a)), -1) for wb in zip(weights, biases) for a in wb], axis=1)


def device(arrays):
    """Host arrays copied to the emulated GPU (the stand-in, as CuPy, refuses NumPy arrays where it needs its own)."""
    return [sys.modules["cupy"].asarray(a) for a in arrays]


@pytest.fixture
def emulated(harness, tmp_path, monkeypatch):
    """A CudaEpoch whose CuPy is tests/cuda_emu/cupy_on_cpu.py: the launcher and the kernel, run on the CPU."""
    from cuda_emu import cupy_on_cpu

    def make(x, y, kind="plain", threads=32, where=None, shared_optin=H100_SHARED, binary=None, **gpu):
        env = {**os.environ, "TSAN_OPTIONS": "halt_on_error=1", "ASAN_OPTIONS": "detect_leaks=0"}
        cupy = cupy_on_cpu.module(binary or harness(kind), tmp_path, shared_optin, env, **gpu)
        monkeypatch.setitem(sys.modules, "cupy", cupy)
        monkeypatch.setattr(cuda, "THREADS", threads)
        if where is not None:  # this variant, whatever fits
            monkeypatch.setattr(cuda, "plan", lambda *a, threads: cuda.layout(*a[:3], *where, threads=threads))
        return cuda.CudaEpoch(None, cupy.asarray(x), cupy.asarray(y))

    return make


def check_emulated(emulated, sizes, dtype, batch, members=3, k=None, cost="quadratic", lmbda=0.0, **how):
    """The emulated kernel gives each member the parameters the portable path gives it."""
    k = 2 * batch + 1 if k is None else k  # a last mini-batch of 1
    x, y, weights, biases, order, eta = problem(sizes, k, dtype, members)
    kernel = emulated(x, y, **how)
    got = flat(*kernel(device(weights), device(biases), order, batch, eta, cost, lmbda))
    want = flat(*portable(x, y, weights, biases, order, batch, eta, cost, lmbda))
    assert not np.allclose(want, flat(weights, biases)), "the parameters should have moved"
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * 1e-2)
    launches = [f.module.launches for f in kernel.functions.values()][0]
    assert len(launches) == 1 and launches[0][1:3] == ((members,), (cuda.THREADS,)), "one launch, one block a member"
    return launches[0]


WHERE = {"shared": (True, True), "params-shared": (True, False), "work-shared": (False, True), "global": (False, False)}


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
@pytest.mark.parametrize("sizes", [[5, 3], [40, 7, 4], [9, 5, 6, 3]], ids=str)
@pytest.mark.parametrize("batch", [1, 3, 10])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emulated_kernel_equals_the_portable_path(emulated, sizes, dtype, batch, where):
    name = check_emulated(emulated, sizes, dtype, batch, where=where)[0]
    assert name == cuda.name_expression(dtype, *where)


OBJECTIVES = [("quadratic", 0.0), ("quadratic", 5.0), ("cross-entropy", 0.0), ("cross-entropy", 5.0)]


@pytest.mark.parametrize("where", [WHERE["shared"], WHERE["global"]], ids=["shared", "global"])
@pytest.mark.parametrize("cost, lmbda", OBJECTIVES, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emulated_chapter_3_kernel_equals_the_portable_path(emulated, dtype, cost, lmbda, where):
    """Each cost x lmbda after 7 mini-batches (the last of 1), two hidden layers, three members with their own eta
    (so their own decay 1 - eta lmbda / n)."""
    check_emulated(emulated, [40, 7, 5, 4], dtype, 3, k=19, cost=cost, lmbda=lmbda, where=where)


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_emulated_chapter_3_kernel_equals_the_books_algorithm_per_example(emulated, cost):
    """Against tests/chapter3.py (eq. 93 one example at a time), not gpunet's own maths: float64, 1e-10."""
    import chapter3

    x, y, weights, biases, order, eta = problem([40, 7, 5, 4], 13, "float64", 1)  # every example once
    got = flat(*emulated(x, y)(device(weights), device(biases), order, 3, eta, cost, 5.0))
    want_w, want_b = chapter3.train([w[0] for w in weights], [b[0] for b in biases], x, y, order, 3, eta[0], cost, 5.0)
    want = flat([w[None] for w in want_w], [b[None] for b in want_b])
    assert not np.allclose(want, flat(weights, biases))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_emulated_chapter_3_kernel_with_lmbda_per_member(emulated):
    check_emulated(emulated, [40, 7, 4], "float64", 3, k=19, cost="cross-entropy", lmbda=np.array([0.0, 2.0, 9.0]))


def test_emulated_scale_trick_folds_a_small_scale_into_the_first_layer(emulated):
    """A decay of 0.1 a mini-batch: s passes 2^-20 at the 7th, which folds s into v in the middle of the epoch."""
    x, y, weights, biases, order, eta = problem([40, 7, 4], 24, "float64", 2)
    lmbda = 0.9 * x.shape[0] / eta  # 1 - eta lmbda / n = 0.1
    kernel = emulated(x, y)
    got = flat(*kernel(device(weights), device(biases), order, 3, eta, "cross-entropy", lmbda))
    want = flat(*portable(x, y, weights, biases, order, 3, eta, "cross-entropy", lmbda))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def chapter_3_split(emulated, monkeypatch, binary=None):
    """The parameters of a cross-entropy epoch with L2 (7 mini-batches, the last of 1) in one launch, and in 3."""
    x, y, weights, biases, order, eta = problem([40, 7, 4], 19, "float64", 2)
    one = flat(*emulated(x, y, binary=binary)(device(weights), device(biases), order, 3, eta, "cross-entropy", 5.0))
    monkeypatch.setattr(cuda, "steps_per_launch", lambda *a: 3)
    split = emulated(x, y, binary=binary)
    got = flat(*split(device(weights), device(biases), order, 3, eta, "cross-entropy", 5.0))
    assert len([f.module.launches for f in split.functions.values()][0]) == 3
    return one, got


def test_emulated_chapter_3_epoch_split_into_launches_gives_the_weights_of_one_launch_bit_for_bit(
    emulated, monkeypatch
):
    """The scale trick's s goes from launch to launch on the device; only the last launch folds it into v."""
    one, got = chapter_3_split(emulated, monkeypatch)
    np.testing.assert_array_equal(got, one)


def test_a_kernel_that_forgets_s_between_launches_fails_the_bit_identity(emulated, harness, tmp_path, monkeypatch):
    old = "  if (!last && tid == 0) first_scale[net] = s;"
    text = cuda.SOURCE.read_text()
    assert text.count(old) == 1, "the mutation no longer applies"
    (tmp_path / "forgets").mkdir()
    (tmp_path / "forgets" / cuda.SOURCE.name).write_text(text.replace(old, ""))
    one, got = chapter_3_split(emulated, monkeypatch, harness("plain", tmp_path / "forgets" / cuda.SOURCE.name))
    assert not np.allclose(got, one, rtol=1e-10)


# Mutated kernels, each of which the chapter-3 comparison must catch (cost, lmbda of the case that catches it).
CHAPTER_3_MUTANTS = {
    "decay applied twice": (
        "wi = (my_decay == 1.0 ? wi : decay_t * wi)",
        "wi = (my_decay == 1.0 ? wi : decay_t * decay_t * wi)",
        5.0,
    ),
    "the first layer's decay lost": ("    s *= my_decay;\n", "\n", 5.0),
    "the quadratic's sigma' in the cross-entropy's delta": (
        "cross_entropy ? error : ",
        "cross_entropy ? error * (av * (T(1) - av)) : ",
        0.0,
    ),
}


@pytest.mark.parametrize("name", CHAPTER_3_MUTANTS)
def test_a_mutated_chapter_3_kernel_differs_from_the_portable_path(emulated, harness, tmp_path, name):
    old, new, lmbda = CHAPTER_3_MUTANTS[name]
    text = cuda.SOURCE.read_text()
    assert text.count(old) == 1, f"the mutation {name!r} no longer applies"
    source = tmp_path / name.replace(" ", "-").replace("'", "") / cuda.SOURCE.name
    source.parent.mkdir()
    source.write_text(text.replace(old, new))
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_emulated(
            emulated, [40, 7, 4], "float64", 3, k=19, cost="cross-entropy", lmbda=lmbda, binary=harness("plain", source)
        )


@pytest.mark.parametrize("threads", [1, 7, 70])
def test_emulated_kernel_any_block_size(emulated, threads):
    """Fewer threads than columns, and groups of 32 left part-full, in the prefix sum of active columns."""
    check_emulated(emulated, [100, 9, 4], "float64", 4, k=10, threads=threads)


@pytest.mark.parametrize(
    "sizes, batch, steps, dtype",
    [(*case, "float32") for case in GPU_CASES] + [(*GPU_CASES[i], "float64") for i in (2, 5)],
    ids=str,
)
def test_emulated_gpu_cases_at_the_gpus_block_size_with_fma(emulated, sizes, batch, steps, dtype):
    """The GPU tests' own problems (same data), run as the GPU runs them: 1024 threads a block, so every sum is split
    the same way, and a*b+c fused as nvcc fuses it. The GPU tests' tolerance then holds with a factor 2 to spare
    for what the CPU cannot imitate (CUDA's expf and exp are within 2 and 1 ulp of glibc's, not equal to them)."""
    x, y, weights, biases, order, eta = problem(sizes, batch * steps - (batch > 1), dtype, 3)  # the check's data
    kernel = emulated(x, y, kind="fma", threads=1024)
    got = flat(*kernel(device(weights), device(biases), order, batch, eta))
    tol = TOLERANCE[dtype] / 2
    want = flat(*portable(x, y, weights, biases, order, batch, eta))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_emulated_check_chapter_3_case_at_the_gpus_block_size_with_fma(emulated, dtype):
    """The check's chapter-3 case (its data and etas) as the GPU runs it: 1024 threads, a*b+c fused."""
    x, y, weights, biases, order, eta = problem([784, 30, 10], 99, dtype, 3, etas=CHAPTER_3_ETAS)
    kernel = emulated(x, y, kind="fma", threads=1024)
    got = flat(*kernel(device(weights), device(biases), order, 10, eta, "cross-entropy", 5.0))
    want = flat(*portable(x, y, weights, biases, order, 10, eta, "cross-entropy", 5.0))
    tol = TOLERANCE[dtype] / 2
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e-2)


def test_emulated_kernel_on_real_mnist_for_100_steps(emulated):
    """MNIST's own sparsity (its active-column lists), the book's network, float64 and 1e-10, one member."""
    from gpunet.data import load_host

    host = load_host()
    x, y = host.train[0][:1000] / 255.0, np.eye(10)[host.train[1][:1000]]
    _, _, weights, biases, _, _ = problem([784, 30, 10], 0, "float64", 1, seed=3)
    order = np.random.default_rng(4).permutation(1000)[None, :]
    got = flat(*emulated(x, y, threads=128)(device(weights), device(biases), order, 10, [3.0]))
    want = flat(*portable(x, y, weights, biases, order, 10, [3.0]))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_emulated_kernel_with_no_examples_leaves_the_parameters(emulated):
    x, y, weights, biases, order, eta = problem([6, 4, 3], 0, "float64", 2)
    got = flat(*emulated(x, y)(device(weights), device(biases), order, 5, eta))
    np.testing.assert_array_equal(got, flat(weights, biases))


def test_launcher_with_no_members_returns_them(emulated):
    x, y, weights, biases, _, _ = problem([6, 4, 3], 4, "float64", 1)
    weights, biases = [w[:0] for w in weights], [b[:0] for b in biases]
    assert emulated(x, y)(weights, biases, np.empty((0, 4), np.int64), 2, np.empty(0)) == (weights, biases)


def test_launcher_compiles_and_launches_on_the_backends_device(emulated):
    """Not on whichever device is current in the calling thread (CuPy's current device is per thread)."""
    x, y, weights, biases, order, eta = problem([6, 4, 3], 4, "float64", 2)
    kernel = emulated(x, y)
    cupy = sys.modules["cupy"]
    kernel = cuda.CudaEpoch(type("B", (), {"device": cupy.cuda.Device(1)})(), *device([x, y]))
    kernel(device(weights), device(biases), order, 2, eta)
    assert [f.module.devices for f in kernel.functions.values()][0] == [1] and cupy.cuda.Device().id == 0


def test_launcher_refuses_more_examples_a_call_than_32_bits_count(emulated):
    x, y, weights, biases, _, eta = problem([6, 4, 3], 4, "float64", 1)
    order = np.broadcast_to(np.zeros(1, np.int64), (1, 2**31 - 10))  # no memory: one value, repeated
    with pytest.raises(ValueError, match="32 bits"):
        emulated(x, y)(weights, biases, order, 10, eta[:1])


def test_launcher_refuses_examples_outside_the_training_set(emulated):
    x, y, weights, biases, order, eta = problem([6, 4, 3], 4, "float64", 2)
    order[1, 2] = x.shape[0]
    with pytest.raises(IndexError, match="outside"):
        emulated(x, y)(weights, biases, order, 2, eta)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_emulated_book_network_opts_in_to_its_shared_memory(emulated, dtype):
    """[784, 30, 10] on an H100's 227 KiB: parameters in shared memory (f32: the workspace too), above 48 KiB."""
    name, _, _, shared, carveout = check_emulated(emulated, [784, 30, 10], dtype, 10, 1, k=12, threads=64)
    assert name == cuda.name_expression(dtype, True, dtype == "float32") and 48 * 1024 < shared <= H100_SHARED
    assert shared + 1024 <= carveout / 100 * 233472


def test_emulated_wide_network_leaves_the_l1_cache_its_parameters(emulated):
    """[784, 100, 10] f32: weights in global memory, the shared-memory carveout no larger than the block needs."""
    name, _, _, shared, carveout = check_emulated(emulated, [784, 100, 10], "float32", 10, 1, k=12, threads=64)
    assert name == cuda.name_expression("float32", False, True)
    assert shared + 1024 <= carveout / 100 * 233472 < shared + 1024 + 233472 / 100


@pytest.mark.parametrize("kind", ["thread", "address"])
@pytest.mark.parametrize("fits", [True, False], ids=["shared", "global"])
def test_emulated_kernel_under_sanitizers(emulated, kind, fits):
    """The launcher's own plan, on a GPU with room for everything or with only enough for the block's counters."""
    sizes, dtype, batch, threads = [40, 7, 4], "float32", 3, 33
    optin = cuda.layout(sizes, 4, batch, fits, fits, threads=threads).shared_bytes
    name, _, _, shared, _ = check_emulated(
        emulated, sizes, dtype, batch, 2, kind=kind, threads=threads, shared_optin=optin
    )
    assert name == cuda.name_expression(dtype, fits, fits) and shared == optin


# ---- launches bounded in time (the display's watchdog) -------------------------------------------------------

# A mutated split, and the test that must catch it (as tests/kernels/test_cuda_check.py's MUTANTS of the .cu).
SPLIT_MUTANTS = {"one mini-batch lost between launches": ("range(0, k, per)", "range(0, k, per + batch)")}


def mutated(function, old: str, new: str):
    """``function`` with ``old`` in its source replaced by ``new``, in its module's namespace."""
    text = textwrap.dedent(inspect.getsource(function))
    assert text.count(old) == 1, f"the mutation no longer applies to {function.__name__}"
    space = dict(vars(inspect.getmodule(function)))
    exec(text.replace(old, new), space)
    return space[function.__name__]


def split_and_whole(emulated, monkeypatch, steps: int):
    """Returns the parameters of an epoch of 8 mini-batches (the last of 1) in one launch, those in launches of
    ``steps`` mini-batches on a GPU with a display watchdog, and the number of those launches."""
    sizes, dtype, batch = [40, 7, 4], "float64", 3
    x, y, weights, biases, order, eta = problem(sizes, 7 * batch + 1, dtype, 2)
    whole = emulated(x, y)
    one = flat(*whole(device(weights), device(biases), order, batch, eta))
    assert len([f.module.launches for f in whole.functions.values()][0]) == 1
    budgets = []
    monkeypatch.setattr(cuda, "steps_per_launch", lambda *a: budgets.append(a[-1]) or steps)
    split = emulated(x, y, watchdog=1)
    got = flat(*split(device(weights), device(biases), order, batch, eta))
    assert budgets == [cuda.WATCHDOG_S], "a GPU with a watchdog gets the watchdog's budget"
    return one, got, len([f.module.launches for f in split.functions.values()][0])


@pytest.mark.parametrize("steps", [1, 3])
def test_an_epoch_split_into_launches_gives_the_weights_of_one_launch_bit_for_bit(emulated, monkeypatch, steps):
    one, got, launches = split_and_whole(emulated, monkeypatch, steps)
    assert launches == -(-8 // steps)
    np.testing.assert_array_equal(got, one)


@pytest.mark.parametrize("name", SPLIT_MUTANTS)
def test_a_split_that_loses_a_mini_batch_between_launches_fails_the_bit_identity(emulated, monkeypatch, name):
    monkeypatch.setattr(cuda, "launches", mutated(cuda.launches, *SPLIT_MUTANTS[name]))
    one, got, _ = split_and_whole(emulated, monkeypatch, 3)
    assert not np.array_equal(got, one)


def test_the_check_times_the_kernel_in_the_launches_training_makes(emulated, monkeypatch):
    """So that on a GPU with a watchdog the check's own timed epoch cannot be stopped by it either."""
    from cuda_emu import standin

    from gpunet.kernels import registry
    from gpunet.kernels.cuda import check as cuda_check
    from gpunet.kernels.portable import PortableEpoch

    emulated(*problem([6, 4, 3], 4, "float64", 1)[:2], watchdog=1)  # installs the stand-in
    cupy, made, budgets = sys.modules["cupy"], [], []
    raw_module = cupy.RawModule
    monkeypatch.setattr(cupy, "RawModule", lambda **options: made.append(raw_module(**options)) or made[-1])
    monkeypatch.setattr(cuda, "steps_per_launch", lambda *a: budgets.append(a[-1]) or 3)
    monkeypatch.setattr(registry, "candidates", lambda *a: iter([(PortableEpoch, None)]))  # no numba compile
    cuda_check.timings(standin.gpu_backend(), [6, 4, 3], 2, "float64", examples=40)
    assert budgets and set(budgets) == {cuda.WATCHDOG_S}
    trained = [launch for module in made for launch in module.launches if "sgd_epoch" in launch[0]]
    assert len(trained) == -(-20 // 3), "the timed epoch's 20 mini-batches in launches of 3"


def test_launches_are_whole_mini_batches_the_last_one_the_rest():
    assert cuda.launches(22, 3, 3) == [(0, 9), (9, 18), (18, 22)]
    assert cuda.launches(9, 3, 3) == [(0, 9)] and cuda.launches(0, 3, 3) == []


# Seconds per mini-batch PREFLIGHT.md section 3-4 estimates from its count of loads and FMAs (modelled, not measured):
# the book's f32 on a T4, and float64 on a laptop RTX (FP64 at 1/64 rate), the slowest it names.
ESTIMATED = [([784, 30, 10], "float32", 47e-6), ([784, 30, 10], "float64", 80e-6), ([784, 100, 10], "float64", 270e-6)]


@pytest.mark.parametrize("sizes, dtype, step_s", ESTIMATED, ids=str)
@pytest.mark.parametrize("members, sms", [(1, 40), (300, 40)])
def test_a_launch_on_a_gpu_with_a_watchdog_stays_far_under_it_modelled(sizes, dtype, step_s, members, sms):
    """Windows' TDR and X's watchdog stop a kernel after about 2 s: a launch's mini-batches at the review's own
    estimate of a step take at most a tenth of that, and one launch still trains many mini-batches."""
    steps = cuda.steps_per_launch(sizes, 10, dtype, members, sms, cuda.WATCHDOG_S)
    assert steps * step_s * -(-members // sms) <= 0.2
    assert steps >= 5 or members > sms


def test_a_launch_the_watchdog_stops_ends_in_one_line_saying_what_to_do(emulated):
    from gpunet.backend import BackendError

    x, y, weights, biases, order, eta = problem([6, 4, 3], 4, "float64", 2)
    kernel = emulated(x, y)
    sys.modules["cupy"].faults.append(702)  # cudaErrorLaunchTimeout
    with pytest.raises(BackendError) as stopped:
        kernel(device(weights), device(biases), order, 2, eta)
    text = str(stopped.value)
    assert "watchdog" in text and "--kernel portable" in text and "gpunet::sgd_epoch<double" in text
    assert "\n" not in text


def test_a_kernel_fault_is_reported_as_the_kernels_not_at_the_next_read(emulated, tmp_path):
    """CUDA reports a fault at the next wait or launch (the stand-in too): the launcher waits after each launch."""
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'an illegal memory access' >&2\nexit 1\n")
    broken.chmod(0o755)
    x, y, weights, biases, order, eta = problem([6, 4, 3], 4, "float64", 2)
    kernel = emulated(x, y, binary=broken)
    with pytest.raises(RuntimeError, match=r"the cuda kernel gpunet::sgd_epoch<double, true, true> failed: .*illegal"):
        kernel(device(weights), device(biases), order, 2, eta)


# ---- the plans on the GPUs users own ------------------------------------------------------------------------

REGISTERS, MAX_THREADS = 65536, 1024  # a block's, on every GPU listed
LAUNCH_BOUNDS = {"sgd_epoch": (1024, 64), "evaluate": (256, 255)}  # threads, and the registers ptxas then allows
CONFIGS = [([784, 30, 10], "float32"), ([784, 30, 10], "float64"), ([784, 100, 10], "float32")]
CONFIGS += [([784, 100, 10], "float64"), ([30, 20, 15, 10], "float64")]


@pytest.mark.parametrize("sizes, dtype", CONFIGS, ids=str)
@pytest.mark.parametrize("gpu", GPUS)
def test_every_plan_launches_within_the_limits_of_each_gpu(tmp_path, monkeypatch, gpu, sizes, dtype):
    """The launcher and the scorer on each GPU's limits (kernels that do nothing: only the launches count). The
    stand-in refuses more dynamic shared memory than the kernel's attribute allows and an attribute above the
    opt-in less the static shared memory, so every launch here also shows the opt-in set whenever needed."""
    from cuda_emu import cupy_on_cpu, standin

    _, optin, per_sm, sms, static = GPUS[gpu]
    nothing = tmp_path / "nothing"
    nothing.write_text("#!/bin/sh\nexit 0\n")
    nothing.chmod(0o755)
    cupy = cupy_on_cpu.module(nothing, tmp_path, optin, static_shared=static)
    cupy.cuda.runtime.getDeviceProperties(0).update(sharedMemPerMultiprocessor=per_sm, multiProcessorCount=sms)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    x, y, weights, biases, order, eta = problem(sizes, 10, dtype, 2)
    kernel = cuda.CudaEpoch(standin.gpu_backend(), cupy.asarray(x), cupy.asarray(y))
    assert kernel.budget == optin - static, "the budget is the opt-in less the kernel's own static shared memory"
    kernel(device(weights), device(biases), order, 10, eta)
    labels = cupy.asarray(np.arange(x.shape[0]) % sizes[-1])
    kernel.score(device(weights), device(biases), cupy.asarray(x), labels)
    modules = {f.module for f in [*kernel.functions.values(), *kernel.scorer.functions.values()]}
    launches = [launch for module in modules for launch in module.launches]
    assert any(name.startswith("gpunet::sgd_epoch") for name, *_ in launches)
    for name, _, block, shared, carveout in launches:
        threads, registers = LAUNCH_BOUNDS[name.split("<")[0].removeprefix("gpunet::")]
        assert block[0] <= min(threads, MAX_THREADS) and block[0] * registers <= REGISTERS
        assert shared + static <= optin
        if carveout != -1:
            assert shared + 1024 <= carveout / 100 * per_sm


@pytest.mark.parametrize("gpu", GPUS)
def test_the_books_float32_parameters_stay_in_shared_memory_where_the_gpu_has_room(gpu):
    """Every step reads and updates all of them: on the 163 KiB and 227 KiB GPUs they must be in shared memory."""
    _, optin, _, _, static = GPUS[gpu]
    p = cuda.plan([784, 30, 10], 4, 10, optin - static)
    assert p.params_shared == (optin > 150_000) and p.shared_bytes + static <= optin


# ---- the stand-in refuses what CuPy refuses (PREFLIGHT.md section 1) --------------------------------------------


@pytest.fixture
def standin(tmp_path):
    from cuda_emu import cupy_on_cpu

    return cupy_on_cpu.module(tmp_path / "no-harness", tmp_path, static_shared=1024)


def test_standin_refuses_options_as_a_list(standin):
    with pytest.raises(TypeError, match="expected tuple, got list"):
        standin.RawModule(code="", options=list(cuda.OPTIONS), name_expressions=cuda.INSTANTIATIONS)


def test_standin_refuses_positional_rawmodule_arguments(standin):
    with pytest.raises(TypeError):
        standin.RawModule("", cuda.OPTIONS, cuda.INSTANTIATIONS)


def test_standin_refuses_numpy_arrays_where_cupy_needs_device_arrays(standin):
    with pytest.raises(TypeError, match="expected cupy"):
        standin.ascontiguousarray(np.zeros(3))
    with pytest.raises(TypeError, match="expected cupy"):
        standin.concatenate([standin.asarray(np.zeros(3)), np.zeros(3)])
    assert isinstance(standin.ascontiguousarray(standin.asarray(np.zeros(3))), np.ndarray)


def test_standin_refuses_shared_memory_above_the_opt_in_less_the_static(standin):
    kernel = standin.RawModule(code="", options=cuda.OPTIONS, name_expressions=cuda.INSTANTIATIONS).get_function(
        cuda.INSTANTIATIONS[0]
    )
    assert kernel.max_dynamic_shared_size_bytes == 48 * 1024 - 1024  # the driver's default, less the static 1 KiB
    kernel.max_dynamic_shared_size_bytes = H100_SHARED - 1024
    with pytest.raises(standin.cuda.runtime.CUDARuntimeError, match="cudaErrorInvalidValue"):
        kernel.max_dynamic_shared_size_bytes = H100_SHARED


def test_standin_refuses_a_block_larger_than_the_compiled_threads(standin):
    options = ("--std=c++17", "-DGPUNET_THREADS=256")
    kernel = standin.RawModule(code="", options=options, name_expressions=cuda.INSTANTIATIONS).get_function(
        cuda.INSTANTIATIONS[0]
    )
    with pytest.raises(standin.cuda.runtime.CUDARuntimeError, match="above the 256 threads"):
        kernel((1,), (512,), ())


# ---- 3. on a GPU: pytest -m gpu ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, batch, steps", GPU_CASES, ids=lambda v: str(v))
def test_gpu_kernel_equals_the_portable_path(cuda_backend, sizes, batch, steps, dtype):
    from gpunet.kernels.cuda.check import compare_epoch

    assert compare_epoch(cuda_backend, sizes, batch, steps, dtype) is None


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cost, lmbda", OBJECTIVES[1:], ids=str)
def test_gpu_chapter_3_kernel_equals_the_portable_path(cuda_backend, cost, lmbda, dtype):
    from gpunet.kernels.cuda.check import compare_epoch

    assert compare_epoch(cuda_backend, [784, 30, 10], 10, 10, dtype, cost=cost, lmbda=lmbda) is None


@pytest.mark.gpu
def test_gpu_kernel_trains_a_sweep_of_members_in_one_launch(cuda_backend):
    """More blocks than an H100 has SMs (132): every member its own order and eta, in waves."""
    sizes, batch, members = [60, 20, 10], 5, 300
    x, y, weights, biases, order, eta = problem(sizes, 4 * batch, "float64", members)
    kernel = cuda.CudaEpoch(cuda_backend, cuda_backend.asarray(x), cuda_backend.asarray(y))
    device = lambda arrays: [cuda_backend.asarray(a) for a in arrays]
    got = flat(*kernel(device(weights), device(biases), order, batch, eta))
    want = flat(*portable(x, y, weights, biases, order, batch, eta))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
def test_gpu_thirty_epochs_reach_the_cpu_accuracy(cuda_backend):
    """Whole runs differ in summation order, which SGD at eta 3 amplifies: compare accuracy, not weights."""
    from gpunet import Network
    from gpunet.data import load_host, pin

    host = load_host()
    best = {}
    for device in ("cpu", "cuda"):
        net = Network([784, 30, 10], seed=1, device=device, dtype="float32")
        data = pin(host, net.backend, net.dtype)
        if device == "cuda":
            kernel = cuda.CudaEpoch(net.backend, *data.training_data)
            n = data.training_data[0].shape[0]
            correct = []
            for _ in range(30):
                order = net.rng.permutation(n)[None, :]
                w, b = kernel([w[None] for w in net.weights], [b[None] for b in net.biases], order, 10, np.array([3.0]))
                net.weights, net.biases = [a[0] for a in w], [a[0] for a in b]
                correct.append(net.evaluate(data.test_data))
        else:
            correct = [r.correct for r in net.SGD(data.training_data, 30, 10, 3.0, data.test_data, callback=None)]
        best[device] = max(correct) / 100
    assert abs(best["cuda"] - best["cpu"]) <= 0.5, best
