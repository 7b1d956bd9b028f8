"""The portable kernel: the book's mini-batch loop in array API calls, on any backend.

Each step gathers every member's mini-batch with one ``take`` and applies
:func:`gpunet.maths.sgd_step`, whose maths broadcast over the member axis.
"""

from __future__ import annotations

import numpy as np

from ..maths import sgd_step
from .base import EpochKernel


class PortableEpoch(EpochKernel):
    """One array-API call per operation and step: runs everywhere, the reference for the other kernels."""

    name = "portable"

    def __init__(self, backend, x, y):
        super().__init__(backend, x, y)
        self.x, self.y = x, y
        self._eta = (None, None)  # (host eta, its device copy): sent once while it does not change

    def __call__(self, weights, biases, order, batch, eta):
        xp = self.backend.xp
        members, k = order.shape
        if k == 0:
            return weights, biases
        eta = np.asarray(eta, np.float64).reshape(members, 1, 1)
        if np.all(eta == eta[0]):
            eta = float(eta[0, 0, 0])  # one rate for all: a number, as the book's update has it
        else:  # a rate per member, on the device, sent again only when it changes
            if self._eta[0] is None or not np.array_equal(self._eta[0], eta):
                self._eta = (eta, self.backend.asarray(eta, dtype=weights[0].dtype))
            eta = self._eta[1]
        order = self.backend.asarray(np.asarray(order, np.int64))  # the only host->device copy of a call
        t = xp.matrix_transpose
        for start in range(0, k, batch):
            m = min(batch, k - start)
            rows = xp.reshape(order[:, start : start + m], (members * m,))
            x = xp.reshape(xp.take(self.x, rows, axis=0), (members, m, self.x.shape[-1]))
            y = xp.reshape(xp.take(self.y, rows, axis=0), (members, m, self.y.shape[-1]))
            weights, biases = sgd_step(weights, biases, t(x), t(y), eta)
        return weights, biases
