"""The epoch kernels against the book's code, stacks of members against each alone, the one choice among them, and
networks deeper than numba compiles."""

import dataclasses
import json
import sys

import numpy as np
import pytest
from helpers import (
    assert_one_line_error,
    bench_on,
    book_parameters,
    cli,
    notes_of,
    synthetic_data,
    train_on,
    write_mnist_like,
)

from gpunet import BackendError, ConfigError, Network, get_backend
from gpunet.bench import peers
from gpunet.book import reference
from gpunet.kernels import KERNELS, MEASURED, choose, device_for, registry
from gpunet.kernels import numba_cpu as numba_kernel
from gpunet.kernels.base import EpochKernel
from gpunet.kernels.cuda.verdicts import Verdict

NETS = [[20, 4], [20, 7, 4], [20, 9, 6, 4]]  # 2, 3 and 4 layers
NUMBA_MISSING = numba_kernel.NumbaEpoch.unusable()
CPU_KERNELS = [
    "portable",
    pytest.param("numba", marks=pytest.mark.skipif(bool(NUMBA_MISSING), reason=f"{NUMBA_MISSING}")),
]


def sparse_inputs(rng, n, n_in, n_out):
    x, y, labels = synthetic_data(rng, n, n_in, n_out)
    x[x < 0.6] = 0  # zero pixels, as in MNIST, exercise the numba kernel's skipped products
    return x, y, labels


def book_run(sizes, seed, x, y, epochs, batch, eta):
    """The book's per-example code from Network(sizes, seed)'s start, in its shuffle order."""
    biases, weights, rng = book_parameters(sizes, seed)
    orders = [rng.permutation(len(x)) for _ in range(epochs)]
    book = reference.Network(sizes, biases=biases, weights=weights)
    book.SGD([(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], epochs, batch, eta, orders)
    return book.weights + book.biases


@pytest.mark.parametrize("kernel", CPU_KERNELS)
@pytest.mark.parametrize("sizes", NETS, ids=str)
@pytest.mark.parametrize("batch", [1, 10, 53])
def test_each_kernel_equals_the_books_code(rng, kernel, sizes, batch):
    """float64, 2 epochs of 53 examples: batch 10 ends each epoch on a short mini-batch of 3."""
    x, y, _ = sparse_inputs(rng, 53, sizes[0], sizes[-1])
    net = Network(sizes, seed=11, device="cpu", dtype="float64")
    net.SGD((x, y), 2, batch, 3.0, callback=None, kernel=kernel)
    assert net.kernel == kernel
    for got, want in zip(net.weights + net.biases, book_run(sizes, 11, x, y, 2, batch, 3.0)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sizes", NETS, ids=str)
@pytest.mark.parametrize("batch", [1, 10, 53])
def test_numba_equals_the_portable_kernel_in_float32(rng, sizes, batch):
    pytest.importorskip("numba")
    x, y, labels = sparse_inputs(rng, 53, sizes[0], sizes[-1])
    nets = {k: Network(sizes, seed=11, device="cpu", dtype="float32") for k in ("portable", "numba")}
    for kernel, net in nets.items():
        net.SGD((x, y), 3, batch, 3.0, callback=None, kernel=kernel)
    for got, want in zip(
        nets["numba"].weights + nets["numba"].biases, nets["portable"].weights + nets["portable"].biases
    ):
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def stack(arrays):
    return [np.stack(a) for a in zip(*arrays)]


@pytest.mark.parametrize("kernel", CPU_KERNELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stacked_members_equal_each_member_alone(rng, kernel, dtype):
    """Three networks, each its own start, order and eta, in one call; numba's threads are bit-exact."""
    sizes, n, batch = [20, 7, 4], 47, 10
    x, y, _ = sparse_inputs(rng, n, sizes[0], sizes[-1])
    x, y = x.astype(dtype), y.astype(dtype)
    starts = [book_parameters(sizes, seed)[:2] for seed in (1, 2, 3)]
    orders = np.stack([rng.permutation(n) for _ in starts])
    etas = np.array([3.0, 0.5, 1.0])
    run = KERNELS[kernel](get_backend("cpu"), x, y)
    together = run(
        stack([[w.astype(dtype) for w in ws] for _, ws in starts]),
        stack([[b.astype(dtype) for b in bs] for bs, _ in starts]),
        orders,
        batch,
        etas,
    )
    for i, (biases, weights) in enumerate(starts):
        alone = run(
            [w[None].astype(dtype) for w in weights],
            [b[None].astype(dtype) for b in biases],
            orders[i : i + 1],
            batch,
            etas[i : i + 1],
        )
        for got, want in zip(together[0] + together[1], alone[0] + alone[1]):
            assert got[i].dtype == np.dtype(dtype)
            if kernel == "numba":
                assert np.array_equal(got[i], want[0])
            else:  # a stacked matmul may sum in another order than a single one
                np.testing.assert_allclose(got[i], want[0], rtol=1e-10 if dtype == "float64" else 1e-4, atol=1e-6)


def test_portable_kernel_runs_stacks_on_every_array_namespace(backend, rng):
    """array_api_strict (and its second device) refuse anything outside the standard and any mixing of devices."""
    sizes, n = [6, 5, 3], 23
    x, y, _ = synthetic_data(rng, n, sizes[0], sizes[-1])
    starts = [book_parameters(sizes, seed)[:2] for seed in (4, 5)]
    orders = np.stack([rng.permutation(n) for _ in starts])
    f64 = backend.dtype("float64")
    run = KERNELS["portable"](backend, backend.asarray(x, dtype=f64), backend.asarray(y, dtype=f64))
    weights = [backend.asarray(a, dtype=f64) for a in stack([ws for _, ws in starts])]
    biases = [backend.asarray(a, dtype=f64) for a in stack([bs for bs, _ in starts])]
    weights, biases = run(weights, biases, orders, 4, np.array([3.0, 1.0]))
    for i, seed in enumerate((4, 5)):
        biases_i, weights_i, _ = book_parameters(sizes, seed)
        book = reference.Network(sizes, biases=biases_i, weights=weights_i)
        book.SGD([(xi[:, None], yi[:, None]) for xi, yi in zip(x, y)], 1, 4, [3.0, 1.0][i], [orders[i]])
        for got, want in zip(weights + biases, book.weights + book.biases):
            np.testing.assert_allclose(backend.to_host(got)[i], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", CPU_KERNELS)
def test_a_mini_batch_larger_than_the_training_set_is_the_whole_set(rng, kernel):
    """As the book's slicing makes it; the numba kernel must not allocate a billion rows either."""
    x, y, _ = sparse_inputs(rng, 13, 20, 4)
    nets = [Network([20, 5, 4], seed=2, device="cpu", dtype="float64") for _ in range(2)]
    nets[0].SGD((x, y), 2, 10**9, 3.0, callback=None, kernel=kernel)
    nets[1].SGD((x, y), 2, 13, 3.0, callback=None, kernel=kernel)
    for got, want in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert np.array_equal(got, want)


def test_numba_on_real_mnist_matches_portable_for_100_steps():
    pytest.importorskip("numba")
    from gpunet.data import load_host, pin

    host = load_host()
    host.train = (host.train[0][:1000], host.train[1][:1000])
    backend = get_backend("cpu")
    nets = {k: Network([784, 30, 10], seed=3, device=backend, dtype="float64") for k in ("portable", "numba")}
    for kernel, net in nets.items():
        data = pin(host, backend, net.dtype)
        net.SGD(data.training_data, 1, 10, 3.0, callback=None, kernel=kernel)
    for got, want in zip(
        nets["numba"].weights + nets["numba"].biases, nets["portable"].weights + nets["portable"].biases
    ):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# --- choosing -----------------------------------------------------------------------------------------------


def fake_cuda():
    """A stand-in for a usable CUDA backend (NumPy arrays under a CUDA device name)."""
    return dataclasses.replace(get_backend("cpu"), name="cuda:0", description="Fake H100", library="cupy 14.2.0")


class FastCuda(EpochKernel):
    """A stand-in CUDA kernel: usable, for CUDA only; whether its check on this GPU passed is set per test."""

    name = "fakecuda"

    @classmethod
    def unsupported(cls, backend, sizes, dtype, batch):
        return None if backend.name.startswith("cuda") else "runs on CUDA only"


@pytest.fixture
def gpu_machine(monkeypatch):
    """A machine where `auto` finds a usable GPU; returns a function registering a fast CUDA kernel."""
    auto = fake_cuda()
    monkeypatch.setattr(registry, "get_backend", lambda spec: auto if spec in ("auto", "cuda") else get_backend(spec))

    def add_kernel(passed: bool):
        failure = "float32 [784, 30, 10] mini-batch 7: w^1 of member 0 at [3, 5]: 0.5, the portable path 0.25"
        verdict = Verdict(passed, "Fake H100", "2026-12-01", "" if passed else failure, "" if passed else "/r.txt")
        kernel = type("FastCuda", (FastCuda,), {"needs_check": True})
        real = registry.verdict_for
        monkeypatch.setattr(registry, "verdict_for", lambda k, *a: verdict if k is kernel else real(k, *a))
        monkeypatch.setitem(KERNELS, kernel.name, kernel)
        monkeypatch.setitem(MEASURED, (kernel.name, "cuda"), 0.01)

    return add_kernel


def test_choose_takes_numba_on_the_cpu_and_portable_elsewhere(fresh_detection):
    pytest.importorskip("numba")
    cpu = get_backend("cpu")
    assert choose(cpu, [784, 30, 10], "float32", 10)[0].name == "numba"
    assert choose(fake_cuda(), [784, 30, 10], "float32", 10)[0].name == "portable"


def test_without_numba_the_portable_kernel_is_chosen_and_the_reason_given(monkeypatch, fresh_detection):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.delitem(sys.modules, "gpunet.kernels._numba_epoch", raising=False)
    kernel, why = choose(get_backend("cpu"), [784, 30, 10], "float32", 10)
    assert kernel.name == "portable" and "numba is not installed" in why and "pip install" in why


def test_numba_that_fails_to_compile_falls_back_with_one_line(monkeypatch, fresh_detection, tmp_path):
    pytest.importorskip("numba")
    from gpunet.kernels import _numba_epoch

    def broken(*args):
        raise RuntimeError("LLVM ERROR: cannot select\nmore detail")

    monkeypatch.setattr(_numba_epoch, "_epoch", broken)
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = cli(
        "train", "--device", "cpu", "--data-dir", tmp_path, "--sizes", "16,2", "--epochs", "1", "--validation-size", "0"
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "kernel portable (numba: numba failed to compile the epoch (RuntimeError: LLVM ERROR" in run.stdout
    info = cli("info", "--data-dir", tmp_path)
    assert "kernel numba: not usable: numba failed to compile" in info.stdout
    monkeypatch.setattr(peers, "available", lambda kind: [])
    bench = bench_on(tmp_path, "16,2", "--device", "cpu")
    assert bench.returncode == 0 and "cpu     portable" in bench.stdout
    assert "gpunet: numba on cpu: not measured: numba failed to compile the epoch" in bench.stderr
    forced = train_on(tmp_path, "--sizes", "16,2", "--kernel", "numba")
    assert_one_line_error(forced, "kernel numba is not usable here", "RuntimeError")


def test_a_forced_kernel_that_cannot_run_the_configuration_is_one_line(monkeypatch, tmp_path):
    class Picky(FastCuda):
        name = "picky"

        @classmethod
        def unsupported(cls, backend, sizes, dtype, batch):
            return "float64 needs more shared memory than a block has" if dtype == "float64" else None

    monkeypatch.setitem(KERNELS, "picky", Picky)
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(tmp_path, "--sizes", "16,2", "--dtype", "float64", "--kernel", "picky")
    assert_one_line_error(run, "kernel picky cannot run this configuration: float64 needs more shared memory")
    assert_one_line_error(cli("train", "--kernel", "fastest"), "--kernel", "invalid choice")
    with pytest.raises(ConfigError, match="unknown kernel 'nope'"):
        choose(get_backend("cpu"), [4, 2], "float32", 1, "nope")


def test_gpu_kernels_whose_check_failed_here_are_never_chosen_automatically(gpu_machine):
    gpu_machine(passed=False)
    kernel, why = choose(fake_cuda(), [784, 30, 10], "float32", 10)
    assert kernel.name == "portable" and why.startswith("fakecuda: failed its check on this Fake H100 on 2026-12-01: ")
    assert "mini-batch 7: w^1 of member 0 at [3, 5]: 0.5, the portable path 0.25; report /r.txt" in why
    with notes_of("gpunet") as notes:
        assert choose(fake_cuda(), [784, 30, 10], "float32", 10, "fakecuda")[0].name == "fakecuda"  # forced: runs
    assert notes[0].startswith("warning: --kernel fakecuda runs a kernel that failed its check")
    assert "kernel fakecuda: usable, failed its check on this Fake H100 on 2026-12-01: " in "".join(registry.describe())


def test_gpu_kernels_whose_check_passed_here_are_chosen_and_say_so(gpu_machine):
    gpu_machine(passed=True)
    kernel, why = choose(fake_cuda(), [784, 30, 10], "float32", 10)
    assert kernel.name == "fakecuda" and why == "checked on this Fake H100 on 2026-12-01"
    assert "kernel fakecuda: usable, checked on this Fake H100 on 2026-12-01" in registry.describe()


def test_auto_keeps_to_the_cpu_when_the_gpu_has_only_slower_kernels(gpu_machine):
    backend = device_for("auto", [784, 30, 10], "float32", 10)
    assert backend.name == "cpu" and "auto chose the CPU" in backend.note and len(backend.note) < 120
    gpu_machine(passed=False)
    note = device_for("auto", [784, 30, 10], "float32", 10).note
    assert "beats the portable kernel on cuda:0 (5.3); fakecuda: failed its check on this Fake H100" in note


def test_auto_takes_the_gpu_when_a_checked_kernel_there_is_faster(gpu_machine):
    gpu_machine(passed=True)
    backend = device_for("auto", [784, 30, 10], "float32", 10)
    assert backend.name == "cuda:0" and backend.note == ""
    assert device_for("cpu", [784, 30, 10], "float32", 10).name == "cpu"  # asked for: never overruled


def test_the_header_says_why_auto_chose_the_cpu_on_a_gpu_machine(gpu_machine, tmp_path):
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = cli("train", "--data-dir", tmp_path, "--sizes", "16,2", "--epochs", "1", "--validation-size", "0")
    assert run.returncode == 0, run.stderr
    header = run.stdout.splitlines()[:4]
    assert "device cpu" in header[0] and header[1].startswith("auto chose the CPU: ")
    assert "beats the portable kernel on cuda:0" in header[1]


def test_header_info_and_manifest_name_the_kernel(tmp_path):
    write_mnist_like(tmp_path / "d", 30, 10, rows=4, cols=4, n_classes=2)
    log = tmp_path / "run.jsonl"
    run = train_on(tmp_path / "d", "--sizes", "16,2", "--kernel", "portable", "--log", log)
    assert run.returncode == 0, run.stderr
    assert "| kernel portable (as asked)" in run.stdout
    manifest = json.loads(log.read_text().splitlines()[0])
    assert manifest["kernel"] == {"name": "portable", "reason": "as asked"}
    info = cli("info", "--data-dir", tmp_path / "d")
    for name in KERNELS:
        assert f"kernel {name}: " in info.stdout


def test_no_fused_is_kernel_portable_and_says_so_in_help(tmp_path):
    help_text = cli("train", "--help").stdout
    assert "--no-fused" in help_text and "the same as --kernel portable" in help_text
    assert "default" not in help_text.split("--no-fused", 1)[1].split("\n  --", 1)[0]  # not "(default: True)"
    write_mnist_like(tmp_path, 30, 10, rows=4, cols=4, n_classes=2)
    run = train_on(tmp_path, "--sizes", "16,2", "--no-fused")
    assert run.returncode == 0 and "kernel portable" in run.stdout


def test_a_named_kernel_must_be_usable(monkeypatch, fresh_detection):
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "gpunet.kernels._numba_epoch", raising=False)
    with pytest.raises(BackendError, match="kernel numba is not usable here: numba is not installed"):
        Network([4, 2], seed=0, device="cpu").SGD((np.zeros((3, 4)), np.zeros((3, 2))), 1, 1, 1.0, kernel="numba")


@pytest.mark.parametrize("targets", [10, 12])
def test_targets_narrower_or_wider_than_the_output_layer_are_refused(rng, targets):
    """A kernel must never read past a target row (the numba loop once read past a 10-wide row for 20 outputs)."""
    x, y, _ = synthetic_data(rng, 30, 6, targets)
    net = Network([6, 5, 11], seed=0, device="cpu", dtype="float64")
    with pytest.raises(ConfigError, match="one-hot targets"):
        net.SGD((x, y), 1, 10, 3.0, callback=None)


# --- depth: networks of thousands of layers train in the portable kernel instead of ending in a numba traceback;
# numba, which compiles a loop per depth, says its limit in one line when asked for more ------------------------

MAX_LAYERS = 64  # gpunet.kernels.numba_cpu.MAX_LAYERS, as docs/reliability.md states it


def _deep(layers, width=2, n_in=784, n_out=10):
    return [n_in] + [width] * (layers - 1) + [n_out]


@pytest.mark.parametrize("layers", [MAX_LAYERS + 1, 10_000])
def test_the_registry_picks_the_portable_kernel_past_numbas_depth(layers):
    kernel, _ = choose(get_backend("cpu"), _deep(layers), "float32", 10)
    assert kernel.name == "portable"


@pytest.mark.skipif(bool(numba_kernel.NumbaEpoch.unusable()), reason="numba is not usable here")
def test_numba_is_still_chosen_within_its_depth():
    assert choose(get_backend("cpu"), _deep(3), "float32", 10)[0].name == "numba"
    assert numba_kernel.MAX_LAYERS == MAX_LAYERS


@pytest.fixture(scope="module")
def deep_data(tmp_path_factory):
    """20 training and 10 test images of MNIST's 28x28: the deep networks' first layer is MNIST's."""
    folder = tmp_path_factory.mktemp("data")
    write_mnist_like(folder, 20, 10)
    return folder


def _one_epoch(data):
    return ["--device", "cpu", "--data-dir", data, "--validation-size", "0", "--epochs", "1"]


def test_train_of_a_thousand_layers_trains(deep_data):
    run = cli("train", *_one_epoch(deep_data), "--sizes", ",".join(map(str, _deep(1000))), "--batch-size", "10")
    assert run.returncode == 0, run.stderr[-500:]
    assert "Epoch 0: " in run.stdout and "portable" in run.stdout


def test_sweep_of_a_thousand_layers_trains(deep_data):
    run = cli("sweep", "--seeds", "1,2", *_one_epoch(deep_data), "--sizes", ",".join(map(str, _deep(1000))))
    assert run.returncode == 0, run.stderr[-500:]
    assert "seed 2: best" in run.stdout


def test_numba_asked_for_too_deep_a_network_is_one_line(deep_data):
    too_deep = ",".join(map(str, _deep(MAX_LAYERS + 1)))
    run = cli("train", *_one_epoch(deep_data), "--kernel", "numba", "--sizes", too_deep)
    assert_one_line_error(run, "kernel numba", f"at most {MAX_LAYERS} layers", str(MAX_LAYERS + 1))


def test_a_deep_network_trains_as_the_books_code_does(rng):
    """70 layers (past numba's limit) of width 3, 2 epochs, float64: the book's per-example code."""
    sizes = [6] + [3] * 69 + [2]
    x, y, _ = synthetic_data(rng, 12, 6, 2)
    net = Network(sizes, seed=5, device="cpu", dtype="float64")
    net.SGD((x, y), 2, 5, 3.0, callback=None)
    assert net.kernel == "portable"
    for got, want in zip(net.weights + net.biases, book_run(sizes, 5, x, y, 2, 5, 3.0)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
