"""Check the CUDA epoch kernel against the portable path on this machine's GPU, briefly enough to run under
compute-sanitizer::

    python -m gpunet.kernels.cuda_selfcheck
    compute-sanitizer --tool memcheck python -m gpunet.kernels.cuda_selfcheck    # out-of-bounds accesses
    compute-sanitizer --tool racecheck python -m gpunet.kernels.cuda_selfcheck   # shared-memory races
    compute-sanitizer --tool synccheck python -m gpunet.kernels.cuda_selfcheck   # __syncthreads() misuse
    compute-sanitizer --tool initcheck python -m gpunet.kernels.cuda_selfcheck   # reads of unwritten global memory

It allocates without CuPy's memory pool, so that each array is its own allocation and memcheck sees where it ends
(inside a pool's chunk, a read past an array is a read of the next one). Racecheck checks shared memory only; the
global-memory variants' races are checked on the CPU (ThreadSanitizer, tests/kernels/test_cuda_kernel.py).
Exits 1 at the first mismatch, 2 without a usable GPU, 0 after one line per case.
"""

from __future__ import annotations

import sys

import numpy as np

from ..backend import BackendError, get_backend
from ..maths import sgd_step
from .cuda import CudaEpoch, plan

# Parameters in shared memory (f32 and f64), in global memory (f32), and three layers with an odd mini-batch.
CASES = (((784, 30, 10), 10), ((784, 100, 10), 10), ((50, 20, 15, 10), 3))


def selfcheck(sizes=(784, 30, 10), batch=10, steps=5, members=2, dtype="float64", backend=None) -> str:
    """Train ``members`` random networks for ``steps`` mini-batches (the last one short) on random sparse inputs
    with the kernel and with gpunet.maths.sgd_step on NumPy; raise AssertionError where they differ."""
    backend = backend or get_backend("cuda")
    rng = np.random.default_rng(0)
    n, tol = batch * steps, {"float64": 1e-10, "float32": 1e-4}[dtype]
    x = rng.random((n, sizes[0])) * (rng.random((n, sizes[0])) < 0.2)  # ~80% zero pixels, like MNIST
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    weights = [rng.standard_normal((members, n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((members, n_out, 1)) for n_out in sizes[1:]]
    order = np.stack([rng.permutation(n)[: n - 1] for _ in range(members)])  # each member its own order
    eta = rng.uniform(0.5, 3.0, members)  # ... and its own eta
    kernel = CudaEpoch(backend, backend.asarray(x, dtype=dtype), backend.asarray(y, dtype=dtype))
    device = lambda arrays: [backend.asarray(a, dtype=dtype) for a in arrays]
    got_w, got_b = kernel(device(weights), device(biases), order, batch, eta)
    x, y = x.astype(dtype), y.astype(dtype)
    for i in range(members):
        w, b = [a[i].astype(dtype) for a in weights], [a[i].astype(dtype) for a in biases]
        for start in range(0, order.shape[1], batch):
            rows = order[i, start : start + batch]
            w, b = sgd_step(w, b, x[rows].T, y[rows].T, float(eta[i]))
        for want, got in zip(w + b, got_w + got_b):
            np.testing.assert_allclose(backend.to_host(got[i]), want, rtol=tol, atol=tol * 1e-2)
    p = plan(list(sizes), np.dtype(dtype).itemsize, batch, kernel.budget)
    return f"{p.name(dtype)} for {list(sizes)}, mini-batch {batch}: equal to the portable path"


def main(backend=None) -> int:
    try:
        backend = backend or get_backend("cuda")
        import cupy

        with cupy.cuda.using_allocator(None):  # no pool: one cudaMalloc an array (see above)
            for dtype in ("float64", "float32"):
                for sizes, batch in CASES:
                    print(selfcheck(sizes, batch, dtype=dtype, backend=backend), flush=True)
    except BackendError as e:
        print(f"gpunet: error: {e}", file=sys.stderr)
        return 2
    except AssertionError as e:
        print(f"gpunet: the cuda kernel differs from the portable path: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
