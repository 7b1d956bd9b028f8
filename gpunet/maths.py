"""The book's equations (chapter 1 and 2) as pure functions, in matrix form over the mini-batch.

Activations are columns, as in the book: ``a`` is ``(..., n, m)`` for ``m`` examples, ``w`` is
``(..., n_out, n_in)`` with ``w[j, k]`` joining neuron ``k`` to neuron ``j`` of the next layer, ``b`` is
``(..., n_out, 1)``; leading axes broadcast, so networks can be stacked. Only the Python array API
standard is called, on the arrays' own namespace.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace


def clip_floor(finfo) -> float:
    """Returns where every kernel's σ clips z from below, so that e^(-z) stays finite: -floor(log(finfo.max))."""
    return -math.floor(math.log(float(finfo.max)))


def sigmoid(xp, z):
    """σ(z) = 1 / (1 + e^(-z)) (eq. 3); z is clipped from below so e^(-z) cannot overflow."""
    return 1.0 / (1.0 + xp.exp(-xp.clip(z, min=clip_floor(xp.finfo(z.dtype)))))


def sigmoid_prime_of(a):
    """σ'(z) = σ(z)(1 - σ(z)), written in terms of the activation a = σ(z)."""
    return a * (1.0 - a)


def cost_derivative(output_activations, y):
    """∂C_x/∂a for the quadratic cost C_x = ½‖y - a^L‖² (eq. 6)."""
    return output_activations - y


def feedforward(weights, biases, a):
    """The network's output for input columns ``a``: a' = σ(w a + b) (eq. 22)."""
    xp = array_namespace(a)
    for w, b in zip(weights, biases):
        a = sigmoid(xp, w @ a + b)
    return a


def backprop(weights, biases, x, y):
    """Gradients of the quadratic cost summed over the columns of ``x``: (nabla_b, nabla_w).

    The book's ``backprop`` for every column of ``x`` and ``y`` at once, each of BP1-BP4 one array expression.
    """
    xp = array_namespace(x)
    activations = [x]  # a^1 = x, then a^l = σ(z^l), z^l = w^l a^(l-1) + b^l
    for w, b in zip(weights, biases):
        activations.append(sigmoid(xp, w @ activations[-1] + b))
    nabla_b = [None] * len(biases)
    nabla_w = [None] * len(weights)
    # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
    delta = cost_derivative(activations[-1], y) * sigmoid_prime_of(activations[-1])
    for l in range(1, len(weights) + 1):  # the book's l counts back from the output
        if l > 1:
            # BP2: δ^l = ((w^(l+1))^T δ^(l+1)) ⊙ σ'(z^l)
            delta = (xp.matrix_transpose(weights[-l + 1]) @ delta) * sigmoid_prime_of(activations[-l])
        # BP3: ∂C/∂b^l = δ^l, summed over the mini-batch
        nabla_b[-l] = xp.sum(delta, axis=-1, keepdims=True)
        # BP4: ∂C/∂w^l_jk = a^(l-1)_k δ^l_j, summed over the mini-batch: δ^l (a^(l-1))^T
        nabla_w[-l] = delta @ xp.matrix_transpose(activations[-l - 1])
    return nabla_b, nabla_w


def sgd_step(weights, biases, x, y, eta):
    """One step of gradient descent on a mini-batch of columns (eqs. 20-21)."""
    nabla_b, nabla_w = backprop(weights, biases, x, y)
    scale = eta / x.shape[-1]
    weights = [w - scale * nw for w, nw in zip(weights, nabla_w)]
    biases = [b - scale * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def mini_batch(size: int, n: int) -> int:
    """The mini-batch size SGD uses on n examples: at most the whole set, as the book's slicing makes it."""
    return min(size, max(n, 1))


def parameter_count(sizes) -> int:
    """The number of weights and biases of a network of layer ``sizes``."""
    return sum(n_in * n + n for n_in, n in zip(sizes[:-1], sizes[1:]))
