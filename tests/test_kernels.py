"""The fused CPU path (numba) gives the parameters of the portable path, which the book's code checks."""

import numpy as np
import pytest
from helpers import synthetic_data

from gpunet import Network, get_backend

pytest.importorskip("numba")

NETS = [[20, 4], [20, 7, 4], [20, 9, 6, 4]]


def sparse_inputs(rng, n, n_in, n_out):
    x, y, labels = synthetic_data(rng, n, n_in, n_out)
    x[x < 0.6] = 0  # zero pixels, as in MNIST, exercise the skipped products
    return x, y, labels


@pytest.mark.parametrize("sizes", NETS, ids=str)
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("batch", [1, 10, 53])
def test_fused_epochs_equal_the_portable_path(rng, sizes, dtype, rtol, batch):
    x, y, labels = sparse_inputs(rng, 53, sizes[0], sizes[-1])
    nets = {fused: Network(sizes, seed=11, device="cpu", dtype=dtype) for fused in (False, True)}
    results = {
        fused: net.SGD((x, y), 3, batch, 3.0, test_data=(x, labels), callback=None, fused=fused)
        for fused, net in nets.items()
    }
    for got, want in zip(nets[True].weights + nets[True].biases, nets[False].weights + nets[False].biases):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)
    if dtype == "float64":
        assert [r.correct for r in results[True]] == [r.correct for r in results[False]]


def test_fused_path_is_chosen_on_the_cpu_and_can_be_refused(rng, monkeypatch):
    from gpunet import fused_cpu

    calls = []
    original = fused_cpu.FusedEpoch.__call__
    monkeypatch.setattr(fused_cpu.FusedEpoch, "__call__", lambda self, *a: calls.append(1) or original(self, *a))
    x, y, _ = sparse_inputs(rng, 20, 6, 3)
    assert get_backend("cpu").fused == "numba"
    Network([6, 3], seed=0, device="cpu").SGD((x, y), 2, 5, 1.0, callback=None)
    assert len(calls) == 1 + 2  # the compile call, then one per epoch
    Network([6, 3], seed=0, device="cpu").SGD((x, y), 2, 5, 1.0, callback=None, fused=False)
    assert len(calls) == 3


def test_fused_path_on_real_mnist_matches_portable_for_100_steps():
    from gpunet.data import load_host, pin

    host = load_host()
    host.train = (host.train[0][:1000], host.train[1][:1000])
    backend = get_backend("cpu")
    nets = {f: Network([784, 30, 10], seed=3, device=backend, dtype="float64") for f in (False, True)}
    for fused, net in nets.items():
        data = pin(host, backend, net.dtype)
        net.SGD(data.training_data, 1, 10, 3.0, callback=None, fused=fused)
    for got, want in zip(nets[True].weights + nets[True].biases, nets[False].weights + nets[False].biases):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
