"""The one interface every way of running SGD epochs implements (portable, numba, CUDA).

Parameters always carry a leading member axis, so one network and a stack of
many (a sweep) go through the same code: ``weights[l]`` has shape
``(N, n_out, n_in)`` and ``biases[l]`` ``(N, n_out, 1)`` on the kernel's device.
"""

from __future__ import annotations

from typing import ClassVar


class EpochKernel:
    """Runs whole mini-batches of SGD, in a given order, on given parameters; :mod:`gpunet.kernels` chooses one."""

    name: ClassVar[str]  # what --kernel NAME, the run header and the manifest call it
    needs_check: ClassVar[bool] = False  # True: chosen only where its check on this machine passed

    @classmethod
    def unusable(cls) -> str | None:
        """Why this kernel cannot run on this machine at all (with an install hint), or None. Detected once."""
        return None

    @classmethod
    def unsupported(cls, backend, sizes, dtype: str, batch: int) -> str | None:
        """Why this kernel cannot run this configuration on ``backend``, or None if it can."""
        return None

    @classmethod
    def cannot_train(cls, cost: str = "quadratic", lmbda=0.0) -> str | None:
        """Why this kernel cannot train with ``cost`` (a name of :data:`gpunet.maths.COSTS`) and ``lmbda`` (L2's λ,
        a number or one per member), or None if it can; the registry asks it beside :meth:`unsupported`."""
        return None

    def __init__(self, backend, x, y):
        """Prepare for the training set on ``backend``: input rows ``(n, sizes[0])``, one-hot targets
        ``(n, sizes[-1])``. Compile in the first call: Network.SGD's untimed one, ``order`` empty ``(N, 0)``."""
        self.backend = backend

    def __call__(self, weights, biases, order, batch: int, eta, cost="quadratic", lmbda=0.0):
        """Returns the new ``(weights, biases)`` (lists of device arrays) after SGD over ``order``.

        ``order`` (host ``int64``, ``(N, k)``): member ``i`` trains on examples ``order[i]`` in mini-batches of
        ``batch`` (at most the training set; the last may be shorter), one update each (eqs. 20-21); ``eta``
        is a host array ``(N,)``. ``cost`` names the cost (:data:`gpunet.maths.COSTS`); ``lmbda`` (a number or
        host array ``(N,)``) is L2's λ over the n examples of the training set (eq. 93). An empty order changes
        nothing; the inputs may be updated in place.
        """
        raise NotImplementedError

    def score(self, weights, biases, x, labels):
        """Each member's count of correct answers on input rows ``x`` with ``labels``, as Network.evaluate
        counts: a device array ``(N,)`` of integers, read in one transfer for the whole stack."""
        return count_correct(self.backend, weights, biases, x, labels)


SCORE_BUDGET = 2**22  # values of one layer's activations held at once: members x inputs x neurons
CHUNK = 10_000  # inputs fed forward together, as Network.outputs feeds them: each member's products are the same


def count_correct(backend, weights, biases, x, labels):
    """The portable scorer: what Network.evaluate counts, for as many members at once as ``SCORE_BUDGET`` holds,
    one batched feedforward (eq. 22) per chunk of inputs, the first most active output compared with the labels."""
    from ..maths import feedforward

    xp = backend.xp
    x = backend.asarray(x, dtype=weights[0].dtype)
    labels = xp.astype(backend.asarray(labels), xp.int64)
    members, n = weights[0].shape[0], x.shape[0]
    group = max(1, SCORE_BUDGET // (max(1, min(n, CHUNK)) * max(w.shape[-2] for w in weights)))
    counts = []
    for g in range(0, members, group):
        end = min(g + group, members)
        ws, bs = [w[g:end, ...] for w in weights], [b[g:end, ...] for b in biases]
        count = xp.zeros((ws[0].shape[0],), dtype=xp.int64, device=backend.device)
        for k in range(0, n, CHUNK):
            stop = min(k + CHUNK, n)
            outputs = feedforward(ws, bs, xp.matrix_transpose(x[k:stop, ...]))  # (members, sizes[-1], inputs)
            count = count + xp.sum(xp.astype(xp.argmax(outputs, axis=-2) == labels[k:stop], xp.int64), axis=-1)
        counts.append(count)
    return xp.concat(counts) if counts else xp.zeros((0,), dtype=xp.int64, device=backend.device)


def config_key(sizes, batch: int, dtype: str) -> str:
    """How a configuration is named in a check's kept timings: ``784,30,10/10/float32``."""
    return f"{','.join(map(str, sizes))}/{batch}/{dtype}"
