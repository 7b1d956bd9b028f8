"""The numba kernel's compiled loop: a whole SGD epoch of one network, for NumPy arrays only.

The portable kernel's maths and order of updates, compiled, with the first layer's products z = w x
(eq. 22) and ∂C/∂w = δ xᵀ (BP4) skipping each input's zero pixels. L2's decay (eq. 93) keeps that sparse
with Bottou's scale trick (SGD Tricks, 2012): the first layer's weights are s·v, the decay multiplies the
number s, and v is multiplied back (a dense pass) only when s gets small and at the end of the call. Imported
only by :mod:`gpunet.kernels.numba_cpu`, which checks once that numba imports and compiles.
"""

from __future__ import annotations

import math

import numba

FOLD = 2.0**-20  # |s| below this: s is multiplied into v (s = 0, a decay of 1: w = 0, taken exactly)


@numba.njit(cache=True, nogil=True, inline="always")
def _axpy(y, alpha, x):
    """y += alpha x, over one row: a loop the compiler turns into vector instructions."""
    for j in range(y.shape[0]):
        y[j] += alpha * x[j]


@numba.njit(cache=True, nogil=True)
def _sigmoid_rows(z, lowest, one):
    """In place, σ(z) = 1 / (1 + e^(-z)) (eq. 3), z clipped from below as in the portable path."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j]
            if v < lowest:
                v = lowest
            z[i, j] = one / (one + math.exp(-v))


@numba.njit(cache=True, nogil=True)
def scale_into(w, s):
    """In place, w = s w: the scale trick's fold, each weight rounded once."""
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            w[i, j] = w[i, j] * s


@numba.njit(cache=True, nogil=True)
def _epoch(wts, bs, acts, deltas, indptr, indices, values, y, perm, batch, eta_over, lowest, one, objective):
    """One epoch of mini-batch SGD over ``perm``; updates ``wts`` (wᵀ per layer) and ``bs`` in place.

    ``indptr, indices, values`` hold the inputs in compressed-row form (non-zero pixels only);
    ``acts[l]`` and ``deltas[l]`` are (batch, n_l) scratch buffers; ``eta_over[m - 1]`` is eta / m.
    ``objective`` is (cross_entropy, decay, cast): the cost, L2's 1 - ηλ/n (float64), and a scratch
    array of the parameters' dtype (two values) that rounds the scale trick's numbers to it.
    """
    cross_entropy, decay, cast = objective
    layers = len(wts)
    n = perm.shape[0]
    sv = 1.0  # the first layer's w = sv v (the scale trick), in float64
    for start in range(0, n, batch):
        m = min(batch, n - start)
        scale = eta_over[m - 1]
        cast[0] = sv
        sx = cast[0]  # s x_c: the first layer's z = Σ_c x_c w_c = Σ_c (s x_c) v_c
        # Feedforward (eq. 22), first layer over non-zero pixels only.
        a = acts[0]
        w0 = wts[0]
        for i in range(m):
            e = perm[start + i]
            row = a[i]
            row[:] = bs[0]
            for p in range(indptr[e], indptr[e + 1]):
                _axpy(row, sx * values[p], w0[indices[p]])
        _sigmoid_rows(a[:m], lowest, one)
        for l in range(1, layers):
            prev, a, w = acts[l - 1], acts[l], wts[l]
            for i in range(m):
                row = a[i]
                row[:] = bs[l]
                for k in range(w.shape[0]):
                    _axpy(row, prev[i, k], w[k])
            _sigmoid_rows(a[:m], lowest, one)
        # BP1: δ^L = (a^L - y) ⊙ a^L (1 - a^L); a^L - y for the cross-entropy (eq. 66)
        a, d = acts[layers - 1], deltas[layers - 1]
        for i in range(m):
            e = perm[start + i]
            for j in range(a.shape[1]):
                if cross_entropy:
                    d[i, j] = a[i, j] - y[e, j]
                else:
                    d[i, j] = (a[i, j] - y[e, j]) * a[i, j] * (one - a[i, j])
        # BP2: δ^l = (w^(l+1))ᵀ δ^(l+1) ⊙ a^l (1 - a^l), all from the weights before this update
        for l in range(layers - 2, -1, -1):
            a, d, d_next, w = acts[l], deltas[l], deltas[l + 1], wts[l + 1]
            for i in range(m):
                for k in range(w.shape[0]):
                    s = d_next[i, 0] * w[k, 0]
                    for j in range(1, w.shape[1]):
                        s += d_next[i, j] * w[k, j]
                    d[i, k] = s * a[i, k] * (one - a[i, k])
        # BP3 and BP4, then w = (1 - ηλ/n) w - (eta/m) ∂C/∂w, b -= (eta/m) ∂C/∂b (eqs. 93, 20-21)
        for l in range(layers - 1, 0, -1):
            prev, d, w, b = acts[l - 1], deltas[l], wts[l], bs[l]
            if decay != 1.0:
                scale_into(w, decay)
            for i in range(m):
                for k in range(w.shape[0]):
                    _axpy(w[k], -scale * prev[i, k], d[i])
                for j in range(b.shape[0]):
                    b[j] -= scale * d[i, j]
        sv *= decay  # the first layer's decay: on s alone, v += -(eta/m)/s ∂C/∂w
        if abs(sv) < FOLD:
            scale_into(w0, sv)
            sv = 1.0
        cast[1] = -scale / sv
        ms = cast[1]
        d, b = deltas[0], bs[0]
        for i in range(m):
            e = perm[start + i]
            for p in range(indptr[e], indptr[e + 1]):
                _axpy(w0[indices[p]], ms * values[p], d[i])
            for j in range(b.shape[0]):
                b[j] -= scale * d[i, j]
    if sv != 1.0:
        scale_into(wts[0], sv)
