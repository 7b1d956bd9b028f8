"""The portable kernel: the book's mini-batch loop in array API calls, on any backend.

Each step gathers every member's mini-batch with one ``take`` and applies
:func:`gpunet.maths.sgd_step`, whose maths broadcast over the member axis.
"""

from __future__ import annotations

import numpy as np

from ..maths import COSTS, sgd_step, weight_decay
from .base import EpochKernel


class PortableEpoch(EpochKernel):
    """One array-API call per operation and step: runs everywhere, the reference for the other kernels."""

    name = "portable"

    def __init__(self, backend, x, y):
        super().__init__(backend, x, y)
        self.x, self.y = x, y
        self.n = x.shape[0]  # L2's n: the size of the training set (eq. 93)
        self._sent: list = [(None, None), (None, None)]  # (host eta or decay, its device copy): sent when changed

    def _on_device(self, values, dtype, slot: int = 0):
        """One value for all members as a number, as the book's update has it; else ``values`` (N, 1, 1) on the
        device, sent again only when they change."""
        if np.all(values == values[0]):
            return float(values[0, 0, 0])
        if self._sent[slot][0] is None or not np.array_equal(self._sent[slot][0], values):
            self._sent[slot] = (values, self.backend.asarray(values, dtype=dtype))
        return self._sent[slot][1]

    def __call__(self, weights, biases, order, batch, eta, cost="quadratic", lmbda=0.0):
        xp = self.backend.xp
        members, k = order.shape
        if k == 0:
            return weights, biases
        eta = np.asarray(eta, np.float64).reshape(members, 1, 1)
        decay = weight_decay(eta, np.broadcast_to(np.asarray(lmbda, np.float64), (members,))[:, None, None], self.n)
        eta, decay = self._on_device(eta, weights[0].dtype), self._on_device(decay, weights[0].dtype, 1)
        order = self.backend.asarray(np.asarray(order, np.int64))  # the only host->device copy of a call
        t = xp.matrix_transpose
        for start in range(0, k, batch):
            m = min(batch, k - start)
            rows = xp.reshape(order[:, start : start + m], (members * m,))
            x = xp.reshape(xp.take(self.x, rows, axis=0), (members, m, self.x.shape[-1]))
            y = xp.reshape(xp.take(self.y, rows, axis=0), (members, m, self.y.shape[-1]))
            weights, biases = sgd_step(weights, biases, t(x), t(y), eta, COSTS[cost], decay)
        return weights, biases
