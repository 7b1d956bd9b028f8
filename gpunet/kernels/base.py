"""The one interface every way of running SGD epochs implements (portable, numba, CUDA).

Parameters always carry a leading member axis, so one network and a stack of
many (a sweep) go through the same code: ``weights[l]`` has shape
``(N, n_out, n_in)`` and ``biases[l]`` ``(N, n_out, 1)`` on the kernel's device.
"""

from __future__ import annotations

from typing import ClassVar


class EpochKernel:
    """Runs whole mini-batches of SGD, in a given order, on given parameters.

    Subclasses set ``name`` and implement :meth:`unusable`, :meth:`unsupported`,
    ``__init__`` and ``__call__``; the registry (:mod:`gpunet.kernels`) chooses
    among them in one place.
    """

    name: ClassVar[str]  # what --kernel NAME, the run header and the manifest call it
    needs_check: ClassVar[bool] = False  # True: chosen only where its check on this machine passed

    @classmethod
    def unusable(cls) -> str | None:
        """Why this kernel cannot run on this machine at all (with an install hint), or None. Detected once."""
        return None

    @classmethod
    def unsupported(cls, backend, sizes, dtype: str, batch: int) -> str | None:
        """Why this kernel cannot run this configuration on ``backend``, or None if it can."""
        raise NotImplementedError

    def __init__(self, backend, x, y):
        """Prepare for the training set pinned on ``backend``: inputs as rows ``(n, sizes[0])``, one-hot
        targets ``(n, sizes[-1])``, both of the network's dtype. The layer shapes are not known
        here: compile in the first call, which :meth:`Network.SGD` makes, outside any timed epoch,
        with an empty ``order`` of shape ``(N, 0)``."""
        self.backend = backend

    def __call__(self, weights, biases, order, batch: int, eta):
        """Run SGD over ``order`` and return the new ``(weights, biases)`` (lists of device arrays).

        ``order`` is a host ``int64`` array ``(N, k)``: member ``i`` trains on examples
        ``order[i]``, in mini-batches of ``batch`` (the last may be shorter), one update per
        mini-batch from the parameters before it (eqs. 20-21). ``eta`` is a host array ``(N,)``.
        ``batch`` is at most the training set's size. An empty order (``k == 0``) changes nothing.
        The inputs may be updated in place.
        """
        raise NotImplementedError

    def score(self, weights, biases, x, labels):
        """Each member's number of correct answers on inputs ``x`` (rows ``(n, sizes[0])``) with ``labels``
        ``(n,)``: what :meth:`gpunet.network.Network.evaluate` counts, for all N members at once, as a device
        array ``(N,)`` of integers. Read it once: one transfer for the whole stack."""
        return count_correct(self.backend, weights, biases, x, labels)


SCORE_BUDGET = 2**22  # values of one layer's activations held at once: members x inputs x neurons
CHUNK = 10_000  # inputs fed forward together, as Network.outputs feeds them: each member's products are the same


def count_correct(backend, weights, biases, x, labels):
    """The portable scorer: what Network.evaluate counts, for groups of members at once (as many as
    ``SCORE_BUDGET`` holds): per chunk of inputs, every member's feedforward in one batched matmul per layer
    (eq. 22), the first most active output (argmax), compared with the labels and summed."""
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
