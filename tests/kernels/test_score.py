"""Scoring a whole stack at once (EpochKernel.score): the portable scorer on every array namespace, the CUDA kernel
(gpunet/kernels/cuda_src/evaluate.cu) through NVRTC and the CPU emulation, and the sweep's one read an epoch.
Every count is compared with Network.evaluate of each member alone, the book's computation one network at a time."""

import dataclasses
import sys

import numpy as np
import pytest
from conftest import strict_backend
from helpers import synthetic_data
from test_cuda_kernel import H100_SHARED, nvrtc_compile, ptxas_usage

from gpunet import Network
from gpunet.backend import get_backend
from gpunet.kernels import base
from gpunet.kernels.cuda import check as cuda_check
from gpunet.kernels.cuda import launcher as cuda
from gpunet.kernels.cuda import scorer as cuda_score


def problem(rng, sizes, members, n, dtype="float64", tie=True):
    """A stack of random networks, sparse inputs and labels; member 0's outputs 0 and 2 (when a tie is asked for)
    are exactly 1 for every input, so its argmax is a tie that the first must win."""
    x, _, labels = synthetic_data(rng, n, sizes[0], sizes[-1])
    x[x < 0.6] = 0
    weights = [rng.standard_normal((members, n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((members, n_out, 1)) for n_out in sizes[1:]]
    if tie:
        biases[-1][0, [0, sizes[-1] - 1]] = 1e3
    cast = lambda arrays: [a.astype(dtype) for a in arrays]
    return x.astype(dtype), labels, cast(weights), cast(biases)


def evaluate_each(backend, sizes, weights, biases, x, labels, dtype="float64") -> list[int]:
    """Network.evaluate of each member alone: the reference."""
    counts = []
    for i in range(weights[0].shape[0]):
        net = Network(sizes, seed=0, device=backend, dtype=dtype)
        net.weights = [backend.asarray(w[i], dtype=net.dtype) for w in weights]
        net.biases = [backend.asarray(b[i], dtype=net.dtype) for b in biases]
        counts.append(net.evaluate((backend.asarray(x, dtype=net.dtype), backend.asarray(labels))))
    return counts


# ---- the portable scorer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[6, 3], [6, 5, 3], [9, 5, 6, 4]], ids=str)
def test_portable_scorer_equals_network_evaluate(backend, rng, sizes, monkeypatch):
    """On NumPy and array_api_strict (any device), in groups of members and chunks of inputs, each with a short
    last one."""
    monkeypatch.setattr(base, "CHUNK", 7)
    monkeypatch.setattr(base, "SCORE_BUDGET", 3 * 7 * max(sizes[1:]))  # 3 members a group
    x, labels, weights, biases = problem(rng, sizes, 4, 40)
    device = lambda arrays: [backend.asarray(a) for a in arrays]
    counts = base.count_correct(backend, device(weights), device(biases), backend.asarray(x), backend.asarray(labels))
    got = backend.to_host(counts).tolist()
    assert got == evaluate_each(backend, sizes, weights, biases, x, labels)
    assert got[0] == int(np.sum(labels == 0)), "a tie of outputs 0 and last goes to 0, the first"
    assert len(set(got)) > 1


def test_portable_scorer_with_no_inputs_counts_zero(rng):
    backend = strict_backend()
    x, labels, weights, biases = problem(rng, [6, 3], 2, 5)
    device = lambda arrays: [backend.asarray(a) for a in arrays]
    counts = base.count_correct(backend, device(weights), device(biases), backend.asarray(x[:0]), labels[:0])
    assert backend.to_host(counts).tolist() == [0, 0]


def test_numba_kernel_scores_members_on_every_core_as_network_evaluate(rng, monkeypatch):
    from gpunet.kernels import numba_cpu

    if reason := numba_cpu.NumbaEpoch.unusable():
        pytest.skip(reason)
    monkeypatch.setattr(numba_cpu.os, "cpu_count", lambda: 3)  # 5 members: parts of 2, 2 and 1
    sizes, cpu = [6, 5, 3], get_backend("cpu")
    x, labels, weights, biases = problem(rng, sizes, 5, 40)
    got = numba_cpu.NumbaEpoch(cpu, x, x[:, :3]).score(weights, biases, x, labels)
    assert got.tolist() == evaluate_each(cpu, sizes, weights, biases, x, labels) and len(set(got.tolist())) > 1


# ---- the CUDA kernel: NVRTC -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled():
    options = (*cuda_score.OPTIONS, "--gpu-architecture=sm_90", "--device-as-default-execution-space", "-ftz=true")
    return nvrtc_compile(cuda_score.SOURCE.read_bytes(), cuda_score.INSTANTIATIONS, (*options, "-Xptxas=-v"))


def test_every_score_instantiation_compiles_for_sm_90_within_the_gpus_registers(compiled):
    ok, log, lowered, _ = compiled
    assert ok, f"NVRTC failed to compile {cuda_score.SOURCE.name}:\n{log}"
    assert set(lowered) == set(cuda_score.INSTANTIATIONS) and len(lowered) == 4
    usage = ptxas_usage(log)
    for name, mangled in lowered.items():
        u = usage[mangled]
        assert u["spills"] == 0 and u["stack"] == 0, f"{name} spills registers: {u}\n{log}"
        assert u["registers"] * cuda_score.THREADS <= 65536, f"{name}: {u['registers']} registers"
        assert u["smem"] == 0, f"{name} has static shared memory the plan does not count: {u}"


@pytest.mark.parametrize(
    "sizes, dtype, shared",
    [
        ([784, 30, 10], "float32", True),  # 95 KB of parameters beside 30 KB of activations
        ([784, 30, 10], "float64", False),  # 190 KB + 61 KB: the parameters stay in global memory
        ([784, 100, 10], "float32", False),
        ([30, 20, 15, 10], "float64", True),
    ],
)
def test_score_plan_puts_parameters_in_shared_memory_where_they_fit(sizes, dtype, shared):
    p = cuda_score.plan(sizes, np.dtype(dtype).itemsize, H100_SHARED)
    assert p.params_shared == shared and p.shared_bytes <= H100_SHARED and p.name(dtype) in cuda_score.INSTANTIATIONS
    assert cuda_score.plan([784, 1000, 10], 8, H100_SHARED) is None  # 2 MB of activations: the portable scorer


# ---- the CUDA kernel on the CPU ----------------------------------------------------------------------------------


@pytest.fixture
def emulated(harness, tmp_path, monkeypatch):
    """A CudaEpoch on the CuPy stand-in (tests/cuda_emu), ``threads`` inputs a block."""
    from cuda_emu import cupy_on_cpu

    def make(x, threads=8, shared_optin=H100_SHARED, kind="plain"):
        monkeypatch.setitem(sys.modules, "cupy", cupy_on_cpu.module(harness(kind), tmp_path, shared_optin))
        monkeypatch.setattr(cuda_score, "THREADS", threads)
        host = dataclasses.replace(get_backend("cpu"), device=None)  # no device to enter: CuPy's current one
        cupy, copies = sys.modules["cupy"], {}  # host arrays on the device, each copied once (kept: same inputs)
        on = lambda a: copies.setdefault(id(a), (a, cupy.asarray(a)))[1]
        kernel = cuda.CudaEpoch(host, on(x), on(x[:, :1]))
        score = kernel.score
        kernel.score = lambda w, b, x, labels: score([on(a) for a in w], [on(a) for a in b], on(x), on(labels))
        return kernel

    return make


WHERE = {"shared": True, "global": False}


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
@pytest.mark.parametrize("sizes", [[5, 3], [40, 7, 4], [9, 5, 6, 3], [20, 45, 10]], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emulated_kernel_counts_what_network_evaluate_counts(emulated, rng, monkeypatch, sizes, dtype, where):
    """Exactly, each member alone, in one launch: a short last block of inputs, a tie, more than 32 neurons (two
    passes), no hidden layer, and parameters read from shared or from global memory."""
    x, labels, weights, biases = problem(rng, sizes, 3, 29, dtype)
    kernel = emulated(x)
    plan = cuda_score.plan

    def forced(sizes, itemsize, budget, threads):
        p = plan(sizes, itemsize, 2**30, threads)  # parameters in shared memory: room for anything
        return p if where else cuda_score.Plan(False, p.shared_bytes - itemsize * p.param_count, p.param_count)

    monkeypatch.setattr(cuda_score, "plan", forced)
    got = kernel.score(weights, biases, x, labels)
    assert got.tolist() == evaluate_each(get_backend("cpu"), sizes, weights, biases, x, labels, dtype)
    assert got[0] == np.sum(labels == 0), "a tie of outputs 0 and last goes to 0, the first"
    launches = kernel.scorer.functions[cuda_score.INSTANTIATIONS[0]].module.launches
    assert [(name, grid, block) for name, grid, block, *_ in launches] == [
        (cuda_score.name_expression(dtype, where), (3 * 4,), (8,))  # 3 members x 4 blocks of 8 inputs
    ]


def test_emulated_kernel_takes_a_nan_output_as_numpys_argmax_does(emulated, rng):
    """A diverged member: NumPy's argmax takes the first NaN as the maximum, and so does the kernel."""
    sizes = [6, 4, 5]
    x, labels, weights, biases = problem(rng, sizes, 2, 20)
    biases[-1][1, [2, 4]] = np.nan
    got = emulated(x).score(weights, biases, x, labels)
    assert got.tolist() == evaluate_each(get_backend("cpu"), sizes, weights, biases, x, labels)
    assert got[1] == np.sum(labels == 2)


def test_emulated_kernel_scores_the_real_mnist_as_network_evaluate(emulated):
    """The book's network on 600 MNIST test images, float64, at a GPU's 256 threads a block: the same counts."""
    from gpunet.data import load_host

    host = load_host()
    x, labels = host.test[0][:600] / 255.0, host.test[1][:600]
    _, _, weights, biases = problem(np.random.default_rng(3), [784, 30, 10], 4, 1, tie=False)
    weights[0][1:] *= 0.1  # members 1-3: smaller weights, other answers
    got = emulated(x, threads=256).score(weights, biases, x, labels)
    assert got.tolist() == evaluate_each(get_backend("cpu"), [784, 30, 10], weights, biases, x, labels)


def test_emulated_kernel_under_the_address_sanitizer(emulated, rng):
    """Reads past the parameters, the inputs or the block's shared memory fail; 5 inputs of a block of 8 unused."""
    sizes = [9, 5, 6, 3]
    x, labels, weights, biases = problem(rng, sizes, 2, 11)
    got = emulated(x, kind="address").score(weights, biases, x, labels)
    assert got.tolist() == evaluate_each(get_backend("cpu"), sizes, weights, biases, x, labels)


def test_launcher_scores_portably_what_the_kernel_cannot_hold(emulated, rng):
    """Activations beyond the GPU's shared memory: the portable scorer, with the same counts and no launch."""
    sizes = [9, 40, 3]
    x, labels, weights, biases = problem(rng, sizes, 2, 11)
    kernel = emulated(x, shared_optin=8 * 40 * 8)  # the 8 inputs' 40 activations leave no room for the counts
    got = get_backend("cpu").to_host(kernel.score(weights, biases, x, labels))
    assert got.tolist() == evaluate_each(get_backend("cpu"), sizes, weights, biases, x, labels)
    assert kernel.scorer.functions[cuda_score.INSTANTIATIONS[0]].module.launches == []


def test_launcher_sends_the_inputs_once_while_they_are_the_same(emulated, rng):
    x, labels, weights, biases = problem(rng, [6, 4, 3], 2, 11)
    kernel = emulated(x)
    first = kernel.score(weights, biases, x, labels).tolist()
    columns = kernel.scorer._inputs[2]
    assert kernel.score(weights, biases, x, labels).tolist() == first and kernel.scorer._inputs[2] is columns
    assert kernel.score(weights, biases, x[:5], labels[:5]).tolist() != first  # other inputs: sent again


def test_emulated_check_score_passes_and_says_so(emulated):
    """check_score, one case of the GPU self-check, here on the emulated kernel: every instantiation."""
    emulated(np.zeros((1, 1)), threads=32)  # install the CPU CuPy
    cupy = sys.modules["cupy"]
    host = type("HostBackend", (), {})()
    host.xp, host.device, host.to_host = get_backend("cpu").xp, None, np.asarray
    host.asarray = lambda a, dtype=None: cupy.asarray(a, dtype=dtype)
    line = cuda_check.check_score(host, inputs=100)
    assert line.startswith("scoring (gpunet::evaluate<") and line.endswith("equal to the portable scorer")


# ---- sweeps and training ---------------------------------------------------------------------------------------


def test_a_sweep_scores_its_stack_in_one_call_and_one_read_an_epoch(rng, monkeypatch):
    """Not a call or a read per member: on a GPU that would be 1,000 launches and device waits an epoch."""
    from gpunet.sweep.grid import Config
    from gpunet.sweep.stacks import run_chunk

    calls = {"score": 0, "to_host": 0}
    score = base.EpochKernel.score

    def counted_score(self, *args):
        calls["score"] += 1
        return score(self, *args)

    class Counting(type(strict_backend())):
        def to_host(self, a):
            calls["to_host"] += 1
            return super().to_host(a)

    monkeypatch.setattr(base.EpochKernel, "score", counted_score)
    backend = Counting(**strict_backend("device1").__dict__)
    x, y, labels = synthetic_data(rng, 60, 6, 3)
    f64 = lambda a: backend.asarray(a, dtype=backend.xp.float64)
    data = type(
        "Data",
        (),
        {"training_data": (f64(x), f64(y)), "test_data": (f64(x), backend.asarray(labels)), "validation_data": None},
    )
    members = [(Config((6, 5, 3), 3.0, 10, "float64"), seed) for seed in range(5)]
    epochs = 3
    result = run_chunk(backend, data, members, epochs, "test", kernel_name="portable")
    assert calls["score"] == epochs
    assert calls["to_host"] == epochs + 2 * 2  # and at the end, the best member's two weights and two biases
    for (_, seed), record in zip(members, result.records):
        alone = Network([6, 5, 3], seed=seed, device=strict_backend("device1"), dtype="float64")
        runs = alone.SGD(data.training_data, epochs, 10, 3.0, data.test_data, callback=None, kernel="portable")
        assert record.correct == [r.correct for r in runs]


# ---- on a GPU: pytest -m gpu ---------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_check_score(cuda_backend):
    assert cuda_check.check_score(cuda_backend).endswith("equal to the portable scorer")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_kernel_scores_mnist_as_network_evaluate(cuda_backend, dtype):
    """300 networks (more blocks than SMs) on the 10,000 MNIST test images, each count as Network.evaluate's on
    the GPU (float32: within one answer, for ties its rounding may break differently)."""
    from gpunet.data import load_host

    host = load_host()
    x, labels = host.test[0] / 255.0, host.test[1]
    _, _, weights, biases = problem(np.random.default_rng(5), [784, 30, 10], 300, 1, dtype, tie=False)
    device = lambda arrays: [cuda_backend.asarray(a) for a in arrays]
    xd = cuda_backend.asarray(x, dtype=dtype)
    kernel = cuda.CudaEpoch(cuda_backend, xd, xd[:, :10])
    got = cuda_backend.to_host(kernel.score(device(weights), device(biases), xd, cuda_backend.asarray(labels)))
    want = evaluate_each(cuda_backend, [784, 30, 10], weights, biases, x, labels, dtype)
    assert np.max(np.abs(got - np.array(want))) <= (dtype == "float32")
