"""The numba kernel's vector loop against the plain loop it was built from: the same weights, bit for bit.

The plain loop (``numba-loop``, :mod:`gpunet.kernels._numba_epoch`) is itself checked against the
book's per-example code in test_kernels.py; here every parameter after 1, 3 and ~100 mini-batches
must be exactly equal (max |diff| 0), for stacks of members with their own starts, orders and
rates, in both dtypes, on inputs that take the compact path and on inputs that cannot.
"""

import numpy as np
import pytest
from helpers import book_parameters, synthetic_data

from gpunet import get_backend
from gpunet.kernels import KERNELS, choose
from gpunet.kernels import numba_cpu as numba_kernel

pytestmark = pytest.mark.skipif(bool(numba_kernel._detect()), reason=f"{numba_kernel._detect()}")

# 2, 3 and 4 layers; odd widths; hidden 100 and 50 pad to 7 vectors (float32 / float64): blocks of 4, 2 and 1;
# mini-batches of 1, 10 and 7, ending each epoch on a short one of 3
NETS = [([20, 4], 1, 97), ([33, 17, 9], 10, 1003), ([40, 100, 50, 10], 7, 703)]


def inputs(rng, n, n_in, n_out, kind):
    """MNIST-like rows (80% zero pixels): "bytes" are k / 255 as pin() makes them, "floats" any value."""
    x, y, _ = synthetic_data(rng, n, n_in, n_out)
    x[x < 0.8] = 0
    if kind == "bytes":
        x = np.rint(x * 255).astype(np.uint8) / 255.0
    else:
        x[x > 0] += rng.standard_normal(np.count_nonzero(x))  # negative pixels too
    return x, y


def run(kernel, x, y, starts, orders, batch, etas, dtype):
    weights = [np.stack([ws[l] for _, ws in starts]).astype(dtype) for l in range(len(starts[0][1]))]
    biases = [np.stack([bs[l] for bs, _ in starts]).astype(dtype) for l in range(len(starts[0][0]))]
    epoch = KERNELS[kernel](get_backend("cpu"), x.astype(dtype), y.astype(dtype))
    return epoch(weights, biases, orders, batch, etas)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["bytes", "floats"])
@pytest.mark.parametrize(("sizes", "batch", "n"), NETS, ids=str)
def test_vector_loop_equals_the_plain_loop_bit_for_bit(rng, dtype, kind, sizes, batch, n):
    """Three members in one call; after 1, 3 and all (~100) mini-batches of an epoch."""
    x, y = inputs(rng, n, sizes[0], sizes[-1], kind)
    starts = [book_parameters(sizes, seed)[:2] for seed in (1, 2, 3)]
    orders = np.stack([rng.permutation(n) for _ in starts])
    etas = np.array([3.0, 0.5, 10.0])
    for steps in (1, 3, None):
        order = orders if steps is None else orders[:, : steps * batch]
        got = run("numba", x, y, starts, order, batch, etas, dtype)
        want = run("numba-loop", x, y, starts, order, batch, etas, dtype)
        for g, w in zip(got[0] + got[1], want[0] + want[1]):
            assert g.dtype == w.dtype == np.dtype(dtype) and g.shape == w.shape
            assert np.array_equal(g, w), f"after {steps} mini-batches: max |diff| {np.abs(g - w).max()}"


def test_compact_inputs_only_where_exact():
    """At most 256 distinct values become byte indices into a table of them; one value more, the values."""
    x = np.zeros((3, 300))
    x[0, :256] = np.arange(1, 257) / 7.0
    indptr, columns, pixels, table = numba_kernel._compact(x)
    assert columns.dtype == np.uint16 and pixels.dtype == np.uint8 and len(table) == 256
    assert np.array_equal(table[pixels], x[0, :256]) and list(indptr) == [0, 256, 256, 256]
    x[1, 0] = 1e-9
    indptr, columns, pixels, table = numba_kernel._compact(x)
    assert pixels.dtype == np.float64 and len(table) == 0 and np.array_equal(pixels[:256], x[0, :256])


@pytest.fixture
def broken_vector_loop(monkeypatch, fresh_detection):
    """The vector loop fails to compile; detection runs afresh before and after."""
    pytest.importorskip("numba")
    from gpunet.kernels import _vector_epoch

    def broken(*args):
        raise RuntimeError("LLVM ERROR: cannot select\nmore detail")

    monkeypatch.setattr(_vector_epoch, "_epoch", broken)


def test_where_the_vector_loop_fails_to_compile_the_plain_loop_runs_and_says_why(broken_vector_loop):
    kernel, why = choose(get_backend("cpu"), [784, 30, 10], "float32", 10)
    assert kernel.name == "numba-loop"
    assert why == (
        "numba: numba failed to compile the vector loop (RuntimeError: LLVM ERROR: cannot select); "
        "--kernel numba-loop runs the plain one"
    )


def test_a_vector_loop_that_disagrees_with_the_plain_loop_is_not_used(monkeypatch, fresh_detection):
    vector_member = numba_kernel._vector_member

    def off_by_one_ulp(*args):
        weights, biases = vector_member(*args)
        return [np.nextafter(w, np.inf) for w in weights], biases

    monkeypatch.setattr(numba_kernel, "_vector_member", off_by_one_ulp)
    assert "differ from the plain loop's" in numba_kernel.NumbaEpoch.unusable()
    assert choose(get_backend("cpu"), [784, 30, 10], "float64", 10)[0].name == "numba-loop"


def test_the_plain_loop_is_never_chosen_where_the_vector_loop_runs(fresh_detection):
    assert choose(get_backend("cpu"), [784, 30, 10], "float32", 10) == (KERNELS["numba"], "the fastest kernel for cpu")
