"""The CUDA kernel under the sanitizers that stand in for a GPU's faults (issue 27 item 4): UndefinedBehaviorSanitizer
catches the misaligned accesses that x86 tolerates and a GPU faults on, and ThreadSanitizer runs the production block
size (1024 threads) on the book's network. Each sanitizer build is shown to catch its mutant of the kernel and to
pass the kernel itself, whose parameters are checked against the portable path (gpunet.maths.sgd_step on NumPy)."""

import os
import sys

import numpy as np
import pytest

from gpunet.kernels.cuda import launcher as cuda
from gpunet.kernels.cuda.check import TOLERANCE, portable, problem

H100_SHARED = 232448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90 (227 KiB)
ENV = {"TSAN_OPTIONS": "halt_on_error=1", "ASAN_OPTIONS": "detect_leaks=0"}  # UBSan: its one-line report, no stack
# The shared-memory regions after the block's partial sums, moved 4 bytes off a double's alignment.
MISALIGNED = (
    "unsigned char* free_shared = gpunet_shared + nthreads * sizeof(T);",
    "unsigned char* free_shared = gpunet_shared + nthreads * sizeof(T) + 4;",
)


def mutant(folder, old: str, new: str):
    """A copy of sgd_epoch.cu with ``old`` replaced by ``new`` (once), in its own folder; returns its path."""
    text = cuda.SOURCE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the kernel no longer holds {old!r}: update the mutant"
    folder.mkdir()
    (folder / cuda.SOURCE.name).write_text(text.replace(old, new), encoding="utf-8")
    return folder / cuda.SOURCE.name


def train(harness, tmp_path, monkeypatch, kind, sizes, dtype, batch, k, threads, where=None, source=None):
    """One member trained on k examples by the kernel (or its mutant ``source``) built with sanitizer ``kind``;
    returns the kernel's parameters and the portable path's, each member's in one row."""
    from cuda_emu import cupy_on_cpu

    cupy = cupy_on_cpu.module(harness(kind, source), tmp_path, H100_SHARED, {**os.environ, **ENV})
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(cuda, "THREADS", threads)
    if where is not None:
        monkeypatch.setattr(cuda, "plan", lambda *a, threads: cuda.layout(*a[:3], *where, threads=threads))
    x, y, weights, biases, order, eta = problem(sizes, k, dtype, 1)
    flat = lambda w, b: np.concatenate([np.asarray(a).reshape(1, -1) for wb in zip(w, b) for a in wb], axis=1)
    on = lambda arrays: [cupy.asarray(a) for a in arrays]  # CuPy takes device arrays only
    got = flat(*cuda.CudaEpoch(None, *on([x, y]))(on(weights), on(biases), order, batch, eta))
    want = flat(*portable(x, y, weights, biases, order, batch, eta))
    assert not np.allclose(want, flat(weights, biases)), "the parameters should have moved"
    return got, want


@pytest.mark.parametrize("where", [(True, True), (False, False)], ids=["shared", "global"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_is_clean_under_ubsan(harness, tmp_path, monkeypatch, dtype, where):
    got, want = train(harness, tmp_path, monkeypatch, "undefined", [40, 7, 4], dtype, 3, 7, threads=70, where=where)
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * 1e-2)


def test_ubsan_catches_a_misaligned_double(harness, tmp_path, monkeypatch):
    """The plain build runs the mutant to the right answer (x86 loads a misaligned double); UBSan stops it."""
    source = mutant(tmp_path / "misaligned", *MISALIGNED)
    how = dict(sizes=[40, 7, 4], dtype="float64", batch=3, k=7, threads=64, where=(True, True), source=source)
    got, want = train(harness, tmp_path, monkeypatch, "plain", **how)
    np.testing.assert_allclose(got, want, rtol=TOLERANCE["float64"])
    with pytest.raises(RuntimeError, match="sgd_epoch.*misaligned address"):  # the kernel named, as on a GPU
        train(harness, tmp_path, monkeypatch, "undefined", **how)


def test_book_network_at_the_production_block_size_under_tsan(harness, tmp_path, monkeypatch):
    """[784, 30, 10] float32, mini-batches of 10, 1024 threads a block (the launcher's THREADS), the launcher's own
    plan on an H100 (everything in shared memory): two mini-batches, the second of them partial."""
    assert cuda.THREADS == 1024
    got, want = train(harness, tmp_path, monkeypatch, "thread", [784, 30, 10], "float32", 10, 15, threads=1024)
    np.testing.assert_allclose(got, want, rtol=TOLERANCE["float32"], atol=TOLERANCE["float32"] * 1e-2)
