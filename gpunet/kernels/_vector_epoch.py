"""The numba kernel's vector loop: a whole SGD epoch of one network, rows held in SIMD registers.

The plain loop's arithmetic (:mod:`gpunet.kernels._numba_epoch`), operation for operation, so the
weights are the same bit for bit. Only how it runs changes: rows of units padded to whole vectors
(:mod:`gpunet.kernels._simd`, pad lanes zero), partial sums kept in registers over an input's non-zero
pixels (eq. 22 and BP4); a copy ``w`` beside ``wᵀ`` so that BP2 runs along rows too; compact inputs where
exact (:func:`pixel`), and the next mini-batch's inputs prefetched; L2 by the plain loop's scale trick.
:mod:`gpunet.kernels.numba_cpu` lays the arrays out and checks once that this compiles and agrees with the
plain loop.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ._numba_epoch import FOLD, scale_into
from ._simd import prefetch, vadd, vconcat, vfill, vload, vmul, vsplat, vstore, vsub

CACHE_LINE = 64


def pixel(pixels, table, p):
    """The value of non-zero pixel ``p``: ``table[pixels[p]]`` for compact inputs, else ``pixels[p]``."""
    raise NotImplementedError("only inside compiled code")


@overload(pixel, inline="always")
def _pixel(pixels, table, p):
    if isinstance(pixels.dtype, types.Integer):
        return lambda pixels, table, p: table[pixels[p]]
    return lambda pixels, table, p: pixels[p]


@numba.njit(cache=True, nogil=True)
def _gather(columns, pixels, table, p0, p1, width, factor, offsets, values):
    """One input's non-zero pixels ``p0:p1`` as row offsets into w0ᵀ, ``factor`` x value, decoded once; their count."""
    count = p1 - p0
    for q in range(count):
        p = np.uint64(p0 + q)
        offsets[q] = np.int64(columns[p]) * width
        values[q] = factor * pixel(pixels, table, p)
    return count


@numba.njit(cache=True, nogil=True)
def _first_layer_block(like, forward, w0, row, k, offsets, values, count):
    """Lanes ``k`` .. of the first layer over one input's gathered pixels, the row in registers.

    forward: ``row`` (holding the biases) += x_c w0ᵀ[c] (eq. 22), ``values`` the pixels x_c.
    Otherwise BP4 and the update: w0ᵀ[c] += (-eta/m x_c) δ, ``row`` δ, ``values`` -eta/m x_c.
    """
    if forward:
        acc = vload(row, k, like)
        for q in range(count):
            acc = vadd(acc, vmul(vfill(values[q], like), vload(w0, offsets[q] + k, like)))
        vstore(row, k, acc)
    else:
        delta = vload(row, k, like)
        for q in range(count):
            at = offsets[q] + k
            vstore(w0, at, vadd(vload(w0, at, like), vmul(vfill(values[q], like), delta)))


@numba.njit(cache=True, nogil=True)
def _one_block(like, forward, w0, row, columns, pixels, table, p0, p1, ms):
    """:func:`_first_layer_block` for a row of one block, decoding the pixels as it goes (one pass); ``ms``
    multiplies each pixel (forward: the scale trick's s; else -eta/(m s))."""
    width = w0.shape[1]
    if forward:
        acc = vload(row, 0, like)
        for p in range(np.uint64(p0), np.uint64(p1)):  # unsigned: no wrap-around test on each index
            x = ms * pixel(pixels, table, p)
            acc = vadd(acc, vmul(vfill(x, like), vload(w0, np.int64(columns[p]) * width, like)))
        vstore(row, 0, acc)
    else:
        delta = vload(row, 0, like)
        for p in range(np.uint64(p0), np.uint64(p1)):
            at = np.int64(columns[p]) * width
            vstore(w0, at, vadd(vload(w0, at, like), vmul(vfill(ms * pixel(pixels, table, p), like), delta)))


@numba.njit(cache=True, nogil=True)
def _seven_block(v4, v2, v1, lane, forward, w0, row, columns, pixels, table, p0, p1, ms):
    """:func:`_one_block` for a row of 7 vectors (100 units in float32) as blocks of 4, 2 and 1 in registers
    at once: one pass over the pixels, not three (docs/speed.md)."""
    width, b, c = w0.shape[1], 4 * lane, 6 * lane
    if forward:
        acc4, acc2, acc1 = vload(row, 0, v4), vload(row, b, v2), vload(row, c, v1)
        for p in range(np.uint64(p0), np.uint64(p1)):
            x, at = ms * pixel(pixels, table, p), np.int64(columns[p]) * width
            acc4 = vadd(acc4, vmul(vfill(x, v4), vload(w0, at, v4)))
            acc2 = vadd(acc2, vmul(vfill(x, v2), vload(w0, at + b, v2)))
            acc1 = vadd(acc1, vmul(vfill(x, v1), vload(w0, at + c, v1)))
        vstore(row, 0, acc4)
        vstore(row, b, acc2)
        vstore(row, c, acc1)
    else:
        d4, d2, d1 = vload(row, 0, v4), vload(row, b, v2), vload(row, c, v1)
        for p in range(np.uint64(p0), np.uint64(p1)):
            x, at = ms * pixel(pixels, table, p), np.int64(columns[p]) * width
            vstore(w0, at, vadd(vload(w0, at, v4), vmul(vfill(x, v4), d4)))
            vstore(w0, at + b, vadd(vload(w0, at + b, v2), vmul(vfill(x, v2), d2)))
            vstore(w0, at + c, vadd(vload(w0, at + c, v1), vmul(vfill(x, v1), d1)))


@numba.njit(cache=True, nogil=True)
def _first_layer(forward, one, lane, w0, row, columns, pixels, table, p0, p1, ms, offsets, values):
    """The first layer's row for one input (eq. 22 forward, else BP4 and the update), in blocks of registers:
    a row of 1, 2, 4 or 7 vectors in one pass, another gathered once (:func:`_gather`), in blocks of 4, 2, 1.
    Each pixel is multiplied by ``ms``: forward the scale trick's s, else -eta/(m s)."""
    v1 = vsplat(one)
    v2 = vconcat(v1, v1)
    v4 = vconcat(v2, v2)
    width, k = w0.shape[1], 0
    if width == lane:
        _one_block(v1, forward, w0, row, columns, pixels, table, p0, p1, ms)
    elif width == 2 * lane:
        _one_block(v2, forward, w0, row, columns, pixels, table, p0, p1, ms)
    elif width == 4 * lane:
        _one_block(v4, forward, w0, row, columns, pixels, table, p0, p1, ms)
    elif width == 7 * lane:
        _seven_block(v4, v2, v1, lane, forward, w0, row, columns, pixels, table, p0, p1, ms)
    else:
        count = _gather(columns, pixels, table, p0, p1, width, ms, offsets, values)
        while width - k >= 4 * lane:
            _first_layer_block(v4, forward, w0, row, k, offsets, values, count)
            k += 4 * lane
        if width - k >= 2 * lane:
            _first_layer_block(v2, forward, w0, row, k, offsets, values, count)
            k += 2 * lane
        if width - k >= lane:
            _first_layer_block(v1, forward, w0, row, k, offsets, values, count)


@numba.njit(cache=True, nogil=True)
def _sigmoid_rows(z, m, n, lowest, one):
    """In place over rows :m and units :n, σ(z) = 1 / (1 + e^(-z)) (eq. 3), clipped as the plain loop does."""
    for i in range(m):
        for j in range(n):
            v = z[i, j]
            if v < lowest:
                v = lowest
            z[i, j] = one / (one + math.exp(-v))


@numba.njit(cache=True, nogil=True)
def _prefetch_inputs(perm, first, count, indptr, columns, pixels):
    """Prefetch the non-zero pixels of examples ``perm[first : first + count]``."""
    for i in range(count):
        e = perm[first + i]
        for p in range(indptr[e], indptr[e + 1], CACHE_LINE // columns.itemsize):
            prefetch(columns, p)
        for p in range(indptr[e], indptr[e + 1], CACHE_LINE // pixels.itemsize):
            prefetch(pixels, p)


@numba.njit(cache=True, nogil=True)
def _epoch(net, inputs, y, perm, batch, eta_over, lowest, one, lane, scratch, objective):
    """One epoch of mini-batch SGD over ``perm``; updates ``wts``, ``ws`` and ``bs`` of ``net`` in place.

    ``net`` is (wts, ws, bs, acts, deltas, sizes), ``inputs`` (indptr, columns, pixels, table). Layer l:
    ``wts[l]`` is wᵀ (sizes[l], padded sizes[l+1]); ``ws[l]`` is w (sizes[l+1], padded sizes[l]), for
    l >= 1 only; ``bs[l]``, and rows of the scratch ``acts[l]``, ``deltas[l]``, are padded sizes[l+1]
    wide. Padded widths are multiples of ``lane``, the lanes of one vector.
    ``eta_over[m - 1]`` is eta / m; ``scratch`` (offsets, values) is as long as an input row; ``objective``
    (cross_entropy, decay, cast) as the plain loop's.
    """
    cross_entropy, decay, cast = objective
    wts, ws, bs, acts, deltas, sizes = net
    indptr, columns, pixels, table = inputs
    offsets, values = scratch
    layers = len(wts)
    n = perm.shape[0]
    w0 = wts[0]
    v = vsplat(one)
    sv = 1.0  # the first layer's w = sv v (the scale trick), in float64
    for start in range(0, n, batch):
        m = min(batch, n - start)
        scale = eta_over[m - 1]
        ms = -scale
        cast[0] = sv
        sx = cast[0]
        _prefetch_inputs(perm, start + batch, min(batch, n - start - batch), indptr, columns, pixels)
        # Feedforward (eq. 22), first layer over non-zero pixels only.
        a = acts[0]
        for i in range(m):
            e = perm[start + i]
            for k in range(0, a.shape[1], lane):
                vstore(a, i * a.shape[1] + k, vload(bs[0], k, v))
            _first_layer(
                True, one, lane, w0, a[i], columns, pixels, table, indptr[e], indptr[e + 1], sx, offsets, values
            )
        _sigmoid_rows(a, m, sizes[1], lowest, one)
        for l in range(1, layers):
            prev, a, wt, b = acts[l - 1], acts[l], wts[l], bs[l]
            for i in range(m):
                for k in range(0, a.shape[1], lane):
                    acc = vload(b, k, v)
                    for j in range(sizes[l]):
                        acc = vadd(acc, vmul(vfill(prev[i, j], v), vload(wt, j * wt.shape[1] + k, v)))
                    vstore(a, i * a.shape[1] + k, acc)
            _sigmoid_rows(a, m, sizes[l + 1], lowest, one)
        # BP1: δ^L = (a^L - y) ⊙ a^L (1 - a^L); a^L - y for the cross-entropy (eq. 66)
        a, d = acts[layers - 1], deltas[layers - 1]
        for i in range(m):
            e = perm[start + i]
            for j in range(sizes[layers]):
                if cross_entropy:
                    d[i, j] = a[i, j] - y[e, j]
                else:
                    d[i, j] = (a[i, j] - y[e, j]) * a[i, j] * (one - a[i, j])
        # BP2: δ^l = (w^(l+1))ᵀ δ^(l+1) ⊙ a^l (1 - a^l), all from the weights before this update
        for l in range(layers - 2, -1, -1):
            a, d, d_next, w = acts[l], deltas[l], deltas[l + 1], ws[l + 1]
            for i in range(m):
                for k in range(0, a.shape[1], lane):
                    s = vmul(vfill(d_next[i, 0], v), vload(w, k, v))
                    for j in range(1, sizes[l + 2]):
                        s = vadd(s, vmul(vfill(d_next[i, j], v), vload(w, j * w.shape[1] + k, v)))
                    av = vload(a, i * a.shape[1] + k, v)
                    vstore(d, i * d.shape[1] + k, vmul(vmul(s, av), vsub(vfill(one, v), av)))
        # BP3 and BP4, then w -= (eta/m) ∂C/∂w, b -= (eta/m) ∂C/∂b (eqs. 20-21), to wᵀ and its copy w alike
        for l in range(layers - 1, 0, -1):
            prev, d, wt, w, b = acts[l - 1], deltas[l], wts[l], ws[l], bs[l]
            if decay != 1.0:  # L2 (eq. 93), as the plain loop
                scale_into(wt, decay)
                scale_into(w, decay)
            for i in range(m):
                for j in range(sizes[l]):
                    x = vfill(ms * prev[i, j], v)
                    for k in range(0, wt.shape[1], lane):
                        at = j * wt.shape[1] + k
                        vstore(wt, at, vadd(vload(wt, at, v), vmul(x, vload(d, i * d.shape[1] + k, v))))
                for o in range(sizes[l + 1]):
                    x = vfill(d[i, o], v)
                    for k in range(0, w.shape[1], lane):
                        at = o * w.shape[1] + k
                        t = vmul(vfill(ms, v), vload(prev, i * prev.shape[1] + k, v))
                        vstore(w, at, vadd(vload(w, at, v), vmul(t, x)))
                for k in range(0, b.shape[0], lane):
                    vstore(b, k, vsub(vload(b, k, v), vmul(vfill(scale, v), vload(d, i * d.shape[1] + k, v))))
        sv *= decay  # the scale trick, as the plain loop
        if abs(sv) < FOLD:
            scale_into(w0, sv)
            sv = 1.0
        cast[1] = -scale / sv
        mss = cast[1]
        d, b = deltas[0], bs[0]
        for i in range(m):
            e = perm[start + i]
            _first_layer(
                False, one, lane, w0, d[i], columns, pixels, table, indptr[e], indptr[e + 1], mss, offsets, values
            )
            for k in range(0, b.shape[0], lane):
                vstore(b, k, vsub(vload(b, k, v), vmul(vfill(scale, v), vload(d, i * d.shape[1] + k, v))))
    if sv != 1.0:
        scale_into(w0, sv)
