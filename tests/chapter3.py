"""Chapter 3's algorithm one example at a time, written from the chapter's equations: the independent reference
for the cross-entropy cost, L2 regularisation and both initialisations (NumPy, float64), as
:mod:`gpunet.book.reference` is for chapter 1. The starting point and each epoch's order are given."""

import numpy as np


def sigma(z):
    return 1.0 / (1.0 + np.exp(-z))


def start(sizes, seed, init):
    """What ``Network(sizes, seed, init=init)`` starts from, drawn here, and the generator left after it:
    b ~ N(0, 1), then w ~ N(0, 1) (large) or N(0, 1) / sqrt(n_in) (default), layer by layer."""
    rng = np.random.default_rng(seed)
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    weights = [rng.standard_normal((n, n_in)) for n_in, n in zip(sizes[:-1], sizes[1:])]
    if init == "default":
        weights = [w / np.sqrt(w.shape[1]) for w in weights]
    return weights, biases, rng


def gradient(weights, biases, x, y, cost):
    """∂C_x/∂w and ∂C_x/∂b of one example (column x, target column y), by BP1-BP4."""
    a, zs = [x], []
    for w, b in zip(weights, biases):
        zs.append(w.dot(a[-1]) + b)
        a.append(sigma(zs[-1]))
    out = a[-1]
    if cost == "cross-entropy":
        error = out - y  # eq. 66
    else:
        error = (out - y) * sigma(zs[-1]) * (1 - sigma(zs[-1]))  # BP1 with eq. 6
    grad_w, grad_b = [None] * len(weights), [None] * len(weights)
    for l in reversed(range(len(weights))):
        if l < len(weights) - 1:
            error = weights[l + 1].T.dot(error) * sigma(zs[l]) * (1 - sigma(zs[l]))  # BP2
        grad_b[l] = error  # BP3
        grad_w[l] = error.dot(a[l].T)  # BP4
    return grad_w, grad_b


def train(weights, biases, x, y, orders, batch, eta, cost="quadratic", lmbda=0.0):
    """Returns (weights, biases) after SGD over rows x, y in each epoch's order: for each mini-batch of m
    examples, w -> (1 - eta lmbda / n) w - (eta / m) sum_x dC_x/dw, b -> b - (eta / m) sum_x dC_x/db (eq. 93)."""
    weights, biases = [w.copy() for w in weights], [b.copy() for b in biases]
    n = len(x)
    for order in orders:
        for k in range(0, n, batch):
            chunk = order[k : k + batch]
            sum_w = [np.zeros_like(w) for w in weights]
            sum_b = [np.zeros_like(b) for b in biases]
            for e in chunk:
                gw, gb = gradient(weights, biases, x[e][:, None], y[e][:, None], cost)
                sum_w = [s + g for s, g in zip(sum_w, gw)]
                sum_b = [s + g for s, g in zip(sum_b, gb)]
            m = len(chunk)
            weights = [(1 - eta * lmbda / n) * w - eta / m * s for w, s in zip(weights, sum_w)]
            biases = [b - eta / m * s for b, s in zip(biases, sum_b)]
    return weights, biases


def total_cost(weights, biases, x, y, cost, lmbda):
    """(1/n) sum_x C_x + (lmbda / 2n) sum_w w^2 over rows x, y (eq. 85), one example at a time."""
    total = 0.0
    for xi, yi in zip(x, y):
        a = xi[:, None]
        for w, b in zip(weights, biases):
            a = sigma(w.dot(a) + b)
        t = yi[:, None]
        if cost == "cross-entropy":
            total += float(np.sum(-t * np.log(a) - (1 - t) * np.log(1 - a)))  # eq. 63
        else:
            total += 0.5 * float(np.sum((a - t) ** 2))
    n = len(x)
    return total / n + lmbda / (2 * n) * sum(float(np.sum(w**2)) for w in weights)
