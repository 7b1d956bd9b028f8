"""Data stays on the device: SGD moves one permutation per epoch to it and one count per evaluation back."""

import array_api_strict
import numpy as np
import pytest
from array_api_strict._array_object import Array  # the class, to count reads of its values
from conftest import strict_backend
from helpers import synthetic_data

from gpunet import Network


class CountingNamespace:
    """array_api_strict, counting every array created from host data."""

    def __init__(self, xp):
        self._xp = xp
        self.host_to_device = 0

    def __getattr__(self, name):
        return getattr(self._xp, name)

    def asarray(self, obj, **kwargs):
        if not isinstance(obj, Array):
            self.host_to_device += 1
        return self._xp.asarray(obj, **kwargs)

    def from_dlpack(self, obj, **kwargs):
        self.host_to_device += 1
        return self._xp.from_dlpack(obj, **kwargs)


@pytest.fixture
def reads(monkeypatch):
    """Count device->host reads of array values (int(), float(), bool(), index())."""
    count = {"n": 0}
    for name in ("__int__", "__float__", "__bool__", "__index__", "__complex__"):
        original = getattr(Array, name)

        def counted(self, *args, _original=original):
            count["n"] += 1
            return _original(self, *args)

        monkeypatch.setattr(Array, name, counted)
    return count


def test_sgd_copies_no_data_per_step(rng, reads):
    base = strict_backend("device1")
    counting = CountingNamespace(array_api_strict)
    backend = type(base)(**{**base.__dict__, "xp": counting})
    x, y, labels = synthetic_data(rng, 200, 6, 3)  # 20 steps per epoch at batch size 10
    net = Network([6, 5, 3], seed=0, device=backend, dtype="float32")
    train = (backend.asarray(x, dtype=net.dtype), backend.asarray(y, dtype=net.dtype))
    test = (backend.asarray(x, dtype=net.dtype), backend.asarray(labels))
    counting.host_to_device = reads["n"] = 0

    epochs = 3
    results = net.SGD(train, epochs, 10, 3.0, test_data=test, callback=None)

    assert counting.host_to_device == epochs  # the shuffle permutation, once an epoch
    assert reads["n"] == epochs  # the correct count of each evaluation
    assert all(isinstance(r.correct, int) for r in results)


def test_host_arrays_given_to_sgd_are_pinned_once(rng):
    counting = CountingNamespace(array_api_strict)
    base = strict_backend("device1")
    backend = type(base)(**{**base.__dict__, "xp": counting})
    x, y, _ = synthetic_data(rng, 100, 6, 3)
    net = Network([6, 3], seed=0, device=backend, dtype="float64")
    counting.host_to_device = 0
    net.SGD((x, y), 2, 10, 3.0, callback=None)
    assert counting.host_to_device == 2 + 2  # x and y once, then a permutation per epoch
    assert np.all(np.isfinite(backend.to_host(net.weights[0])))


def test_a_sweep_on_a_device_reads_its_counts_once_an_epoch_not_once_a_member(rng, reads):
    """On a GPU a read per member (1,000 of them) would make the device wait 1,000 times an epoch."""
    from gpunet.sweep.grid import Config
    from gpunet.sweep.stacks import run_chunk

    backend = strict_backend("device1")
    x, y, labels = synthetic_data(rng, 60, 6, 3)

    class Data:
        training_data = (
            backend.asarray(x, dtype=array_api_strict.float64),
            backend.asarray(y, dtype=array_api_strict.float64),
        )
        test_data = (backend.asarray(x, dtype=array_api_strict.float64), backend.asarray(labels))
        validation_data = None

    members = [(Config((6, 5, 3), 3.0, 10, "float64"), seed) for seed in range(5)]
    reads["n"] = 0
    result = run_chunk(backend, Data, members, 2, "test")
    assert reads["n"] == 0  # the counts came back together, as one array per epoch
    for (_, seed), record in zip(members, result.records):
        alone = Network([6, 5, 3], seed=seed, device=backend, dtype="float64")
        assert record.correct == [
            r.correct for r in alone.SGD(Data.training_data, 2, 10, 3.0, test_data=Data.test_data, callback=None)
        ]
